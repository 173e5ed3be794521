import Foundation
import Synchronization

/// How many `dwcp sql` statements may run long at once, so that a few heavy queries never hold
/// every query connection and the short reads (`dwcp host list`, `vm list`, a dashboard's) keep
/// being answered beside them.
///
/// A statement is long once it has run past ``QueryLimits/longStatementMilliseconds``. It then
/// needs one of ``QueryLimits/longStatementSlots`` slots to go on: without a free one it waits for
/// one, within its own deadline, as long as no more than ``QueryLimits/longStatementWaiters``
/// others are waiting already; past that it is stopped at once (`busy`). So long statements hold
/// at most slots + waiters connections, and the rest stay free for short ones.
final class LongStatementGate: Sendable {
    private struct State {
        var running = 0
        var waiting = 0
    }

    let slots: Int
    let waiters: Int
    private let state = Mutex(State())

    init(slots: Int, waiters: Int) {
        self.slots = max(slots, 1)
        self.waiters = max(waiters, 0)
    }

    /// What came of asking for a slot.
    enum Admission: Equatable {
        /// The statement holds a slot now: ``release()`` it when the statement ends.
        case admitted
        /// Every slot stayed taken until the deadline.
        case deadlinePassed
        /// Every slot is taken and enough statements wait already.
        case busy
    }

    /// Takes a slot, waiting for one (polling: the caller is a reader's own thread, blocked in
    /// SQLite's progress handler) until `deadline` at the latest.
    func admit(before deadline: ContinuousClock.Instant) -> Admission {
        // (A newcomer takes a free slot only when nobody waits for one: waiters go first.)
        let first: Admission? = state.withLock { s in
            if s.running < slots && s.waiting == 0 {
                s.running += 1
                return .admitted
            }
            if s.waiting >= waiters { return .busy }
            s.waiting += 1
            return nil
        }
        if let first { return first }
        while true {
            let now = ContinuousClock.now
            if now >= deadline {
                state.withLock { $0.waiting -= 1 }
                return .deadlinePassed
            }
            let nap = min(deadline - now, .milliseconds(5))
            Thread.sleep(forTimeInterval: Double(nap.components.attoseconds) / 1e18 + Double(nap.components.seconds))
            let taken = state.withLock { s in
                guard s.running < slots else { return false }
                s.running += 1
                s.waiting -= 1
                return true
            }
            if taken { return .admitted }
        }
    }

    func release() {
        state.withLock { $0.running -= 1 }
    }

    /// Statements running long, and statements waiting to.
    var load: (running: Int, waiting: Int) { state.withLock { ($0.running, $0.waiting) } }
}
