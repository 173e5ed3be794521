import Synchronization

/// Callers waiting for an answer that arrives later from elsewhere (the leader's answer to a
/// forwarded proposal, a read index, another member's status), each under a number of its own and
/// with a deadline.
///
/// `wait` registers the caller before `send` runs, so an answer can never arrive before anyone
/// waits for it; an answer nobody waits for any more (it came after the deadline) is dropped.
/// A waiting task that is cancelled stops waiting at once with `CancellationError` (a client that
/// went away no longer holds its waiter until the deadline). Once ``failAll(_:)`` has run
/// (shutdown), every new wait fails at once with its error.
final class PendingAnswers<Value: Sendable>: Sendable {
    private struct Waiter {
        let deadline: ContinuousClock.Instant
        let continuation: CheckedContinuation<Value, any Error>
        /// A question asked again until it is answered: how often, when next, and how.
        var repeating: Repeating?
        /// Which answers the waiter takes (others leave it waiting).
        var accepts: (@Sendable (Value) -> Bool)?
        /// Whom the question went to (``note(_:askedOf:)``).
        var askedOf: String?
    }

    private struct Repeating {
        let every: Duration
        var next: ContinuousClock.Instant
        let send: @Sendable (UInt64) -> Void
    }

    private struct State: ~Copyable {
        /// Starts at random (never 0: RaftConsensus.announce() asks under it), so an answer meant
        /// for an earlier run of this node (the leader may still hold a question when it
        /// restarts) is not taken for the answer to a new question under the same number.
        var nextID = UInt64.random(in: 1...(1 << 62))
        var waiting: [UInt64: Waiter] = [:]
        /// Set by ``failAll(_:)``: what every later wait is told.
        var closed: (any Error)?
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
        let id = newID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard register(id, timeout: timeout, continuation: continuation, repeating: nil, accepts: nil) else {
                    return
                }
                do {
                    try send(id)
                } catch {
                    resolve(id, with: .failure(error))
                }
            }
        } onCancel: {
            resolve(id, with: .failure(CancellationError()))
        }
    }

    /// Like ``wait(timeout:send:)``, for a question that may be lost on the way: `send` is called
    /// again, with the same id, every `every` until the answer comes (by ``expireOverdue()``, which
    /// its owner calls on every tick).
    /// Only an answer `accepts` takes resolves it; another (a stray answer under a reused id)
    /// leaves it waiting.
    func ask(
        timeout: Duration, every: Duration, accepts: @escaping @Sendable (Value) -> Bool,
        send: @escaping @Sendable (UInt64) -> Void
    ) async throws -> Value {
        let id = newID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let repeating = Repeating(every: every, next: .now + every, send: send)
                guard
                    register(id, timeout: timeout, continuation: continuation, repeating: repeating, accepts: accepts)
                else { return }
                send(id)
            }
        } onCancel: {
            resolve(id, with: .failure(CancellationError()))
        }
    }

    private func newID() -> UInt64 {
        state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    /// Adds a waiter under `id`; fails it at once (returning false) when the answers are closed
    /// or the task was cancelled before it could wait (the cancellation handler found no waiter).
    private func register(
        _ id: UInt64, timeout: Duration, continuation: CheckedContinuation<Value, any Error>,
        repeating: Repeating?, accepts: (@Sendable (Value) -> Bool)?
    ) -> Bool {
        let refusal: (any Error)? = state.withLock { state in
            if let closed = state.closed { return closed }
            if Task.isCancelled { return CancellationError() }
            state.waiting[id] = Waiter(
                deadline: .now + timeout, continuation: continuation, repeating: repeating, accepts: accepts)
            return nil
        }
        guard let refusal else { return true }
        continuation.resume(throwing: refusal)
        return false
    }

    /// Whether `id` still waits.
    func isWaiting(_ id: UInt64) -> Bool { state.withLock { $0.waiting[id] != nil } }

    /// Hands `id` its answer (once; nothing happens if it no longer waits, or does not take
    /// this answer).
    func resolve(_ id: UInt64, with result: Result<Value, any Error>) {
        let waiter = state.withLock { state -> Waiter? in
            if case .success(let value) = result, let accepts = state.waiting[id]?.accepts, !accepts(value) {
                return nil
            }
            return state.waiting.removeValue(forKey: id)
        }
        waiter?.continuation.resume(with: result)
    }

    /// Fails the waiters past their deadline, and sends again the repeated questions that are due.
    func expireOverdue() {
        let now = ContinuousClock.now
        let (expired, due) = state.withLock { state in
            let ids = state.waiting.filter { $0.value.deadline <= now }.map(\.key)
            let expired = ids.compactMap { state.waiting.removeValue(forKey: $0) }
            var due: [(UInt64, @Sendable (UInt64) -> Void)] = []
            for (id, waiter) in state.waiting {
                guard let repeating = waiter.repeating, repeating.next <= now else { continue }
                state.waiting[id]?.repeating?.next = now + repeating.every
                due.append((id, repeating.send))
            }
            return (expired, due)
        }
        for waiter in expired { waiter.continuation.resume(throwing: timeoutError()) }
        for (id, send) in due { send(id) }
    }

    /// Fails every waiter with `error` (shutdown), and every later one.
    func failAll(_ error: any Error) {
        let all = state.withLock { state in
            defer {
                state.waiting = [:]
                state.closed = error
            }
            return Array(state.waiting.values)
        }
        for waiter in all { waiter.continuation.resume(throwing: error) }
    }

    /// Notes whom `id`'s question went to, for ``waiting(askedOf:)`` (nil: nobody now).
    func note(_ id: UInt64, askedOf member: String?) {
        state.withLock { $0.waiting[id]?.askedOf = member }
    }

    /// Whom `id`'s question went to last; nil when it went to nobody or no longer waits.
    func askedOf(_ id: UInt64) -> String? {
        state.withLock { $0.waiting[id]?.askedOf }
    }

    /// The waiters whose addressee (``note(_:askedOf:)``; nil: nobody) matches.
    func waiting(askedOf matches: (String?) -> Bool) -> [UInt64] {
        state.withLock { $0.waiting.filter { matches($0.value.askedOf) }.map(\.key).sorted() }
    }

    /// Has `id`'s repeated question asked again at the next ``expireOverdue()`` rather than at its
    /// usual time (its answer was "not now": no leader, or leadership changing), to whoever leads
    /// then.
    func askAgain(_ id: UInt64) {
        state.withLock { state in
            guard state.waiting[id]?.repeating != nil else { return }
            state.waiting[id]!.repeating!.next = .now
            state.waiting[id]!.askedOf = nil
        }
    }

    /// ``askAgain(_:)`` for every repeated question whose addressee matches (one that went to a
    /// leader that lost its leadership may never be answered).
    func askAgain(askedOf matches: (String?) -> Bool) {
        for id in waiting(askedOf: matches) { askAgain(id) }
    }
}
