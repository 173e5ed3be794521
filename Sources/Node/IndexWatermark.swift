import Synchronization

/// A log position that only moves forward (the commit index, the applied index), which tasks can
/// wait on. Waiting honours task cancellation; closing the watermark ends every wait.
public final class IndexWatermark: Sendable {
    private struct Waiter {
        let id: UInt64
        let target: UInt64
        /// When ``expireOverdue(now:)`` ends the wait with nil; nil: never.
        let deadline: ContinuousClock.Instant?
        let continuation: CheckedContinuation<UInt64?, any Error>
    }

    private struct State {
        var value: UInt64
        var advancedAt = ContinuousClock.now
        var closedReason: String?
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
        /// No waiter's deadline is earlier (it may be earlier than any left: then a scan finds none).
        var earliestDeadline: ContinuousClock.Instant?
    }

    private let state: Mutex<State>

    /// How a wait begins: with the target reached already, or as this waiter.
    private enum WaitStart {
        case reached(UInt64)
        case waiting(id: UInt64)
    }

    public init(_ value: UInt64 = 0) {
        state = Mutex(State(value: value))
    }

    public var value: UInt64 { state.withLock { $0.value } }

    /// The value and when it last moved (the host agent measures VM starts from there).
    public var valueAndTime: (value: UInt64, advancedAt: ContinuousClock.Instant) {
        state.withLock { ($0.value, $0.advancedAt) }
    }

    /// How many callers wait for the watermark to move.
    var waiterCount: Int { state.withLock { $0.waiters.count } }

    /// Moves the watermark to `value` if that is higher, waking the waiters it satisfies.
    public func advance(to value: UInt64) {
        let ready = state.withLock { s -> [Waiter] in
            guard value > s.value else { return [] }
            s.value = value
            s.advancedAt = .now
            let (done, waiting) = s.waiters.reduce(into: ([Waiter](), [Waiter]())) { acc, w in
                if w.target <= value { acc.0.append(w) } else { acc.1.append(w) }
            }
            s.waiters = waiting
            return done
        }
        for waiter in ready { waiter.continuation.resume(returning: value) }
    }

    /// Ends every wait, now and later, with `NodeError.unavailable(reason)`.
    public func close(reason: String) {
        let waiters = state.withLock { s -> [Waiter] in
            s.closedReason = reason
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.continuation.resume(throwing: NodeError(.unavailable, reason)) }
    }

    /// Returns once the watermark is at least `target`, with its value then.
    @discardableResult
    public func wait(until target: UInt64) async throws -> UInt64 {
        try await wait(until: target, deadline: nil)!
    }

    /// Like ``wait(until:)``, but returns nil once `deadline` has passed and someone called
    /// ``expireOverdue(now:)`` (the Raft driver does on every tick). Costs what ``wait(until:)``
    /// costs: no timer task per wait, which ``wait(until:timeout:)`` starts.
    public func wait(until target: UInt64, deadline: ContinuousClock.Instant?) async throws -> UInt64? {
        // Reached already: return without suspending. A suspension, even one resumed at once,
        // puts the task at the back of its executor's queue (behind whatever else that event loop
        // has to do) on the path of every intent.
        let start = state.withLock { s -> WaitStart in
            guard s.value < target else { return .reached(s.value) }
            s.nextID += 1
            return .waiting(id: s.nextID)
        }
        let id: UInt64
        switch start {
        case .reached(let value): return value
        case .waiting(let waiter): id = waiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<UInt64?, any Error>) in
                enum Action { case resume(UInt64), fail(any Error), none }
                let action = state.withLock { s -> Action in
                    if s.value >= target { return .resume(s.value) }
                    if let reason = s.closedReason { return .fail(NodeError(.unavailable, reason)) }
                    if Task.isCancelled { return .fail(CancellationError()) }
                    s.waiters.append(Waiter(id: id, target: target, deadline: deadline, continuation: continuation))
                    if let deadline, s.earliestDeadline.map({ deadline < $0 }) ?? true { s.earliestDeadline = deadline }
                    return .none
                }
                switch action {
                case .resume(let v): continuation.resume(returning: v)
                case .fail(let e): continuation.resume(throwing: e)
                case .none: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { s -> Waiter? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Ends the waits whose deadline has passed (they return nil). Cheap when none has one due.
    public func expireOverdue(now: ContinuousClock.Instant = .now) {
        let expired = state.withLock { s -> [Waiter] in
            guard let earliest = s.earliestDeadline, earliest <= now else { return [] }
            var expired: [Waiter] = []
            var kept: [Waiter] = []
            for waiter in s.waiters {
                if let deadline = waiter.deadline, deadline <= now {
                    expired.append(waiter)
                } else {
                    kept.append(waiter)
                }
            }
            s.waiters = kept
            s.earliestDeadline = kept.compactMap(\.deadline).min()
            return expired
        }
        for waiter in expired { waiter.continuation.resume(returning: nil) }
    }

    /// Like ``wait(until:)`` but gives up after `timeout`, returning nil.
    public func wait(until target: UInt64, timeout: Duration) async throws -> UInt64? {
        if value >= target { return value }
        return try await withThrowingTaskGroup(of: UInt64?.self) { group in
            group.addTask { try await self.wait(until: target) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
