import Synchronization

/// Callers waiting for an answer that arrives later from elsewhere (the leader's answer to a
/// forwarded proposal, a read index), each under a number of its own and with a deadline.
///
/// `wait` registers the caller before `send` runs, so an answer can never arrive before anyone
/// waits for it; an answer nobody waits for any more (it came after the deadline) is dropped.
final class PendingAnswers<Value: Sendable>: Sendable {
    private struct Waiter {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Value, any Error>
    }

    private struct State: ~Copyable {
        var nextID: UInt64 = 1
        var waiting: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())
    /// What an overdue caller is told.
    private let timeoutError: @Sendable () -> any Error

    init(timeoutError: @escaping @Sendable () -> any Error) {
        self.timeoutError = timeoutError
    }

    /// Registers a waiter under a new id, calls `send` with it, and waits for ``resolve(_:with:)``.
    /// If `send` throws, the caller gets that error.
    func wait(timeout: Duration, send: (UInt64) throws -> Void) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let id = state.withLock { state in
                let id = state.nextID
                state.nextID += 1
                state.waiting[id] = Waiter(deadline: .now + timeout, continuation: continuation)
                return id
            }
            do {
                try send(id)
            } catch {
                resolve(id, with: .failure(error))
            }
        }
    }

    /// Whether `id` still waits.
    func isWaiting(_ id: UInt64) -> Bool { state.withLock { $0.waiting[id] != nil } }

    /// Hands `id` its answer (once; nothing happens if it no longer waits).
    func resolve(_ id: UInt64, with result: Result<Value, any Error>) {
        let waiter = state.withLock { $0.waiting.removeValue(forKey: id) }
        waiter?.continuation.resume(with: result)
    }

    /// Fails the waiters past their deadline.
    func expireOverdue() {
        let now = ContinuousClock.now
        let expired = state.withLock { state in
            let ids = state.waiting.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.waiting.removeValue(forKey: $0) }
        }
        for waiter in expired { waiter.continuation.resume(throwing: timeoutError()) }
    }

    /// Fails every waiter with `error` (shutdown).
    func failAll(_ error: any Error) {
        let all = state.withLock { state in
            defer { state.waiting = [:] }
            return Array(state.waiting.values)
        }
        for waiter in all { waiter.continuation.resume(throwing: error) }
    }
}
