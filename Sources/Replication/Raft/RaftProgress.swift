/// What a leader knows about one follower's log, and how it is sending to it.
struct RaftProgress: Sendable {
    enum State: Sendable, Equatable {
        /// One append at a time until the leader finds where the logs match.
        case probe
        /// Logs match; appends are pipelined (`inflight` of them at once).
        case replicate
        /// The entries it needs are compacted; a snapshot at this index is on its way.
        case snapshot(index: UInt64)
    }

    var match: UInt64 = 0
    var next: UInt64
    var state: State = .probe
    /// In probe state: an append is out and unanswered since the last heartbeat.
    var probeSent = false
    /// The last index of each append in flight, oldest first (replicate state).
    var inflight: [UInt64] = []
    /// Heard from since the last quorum check.
    var recentlyActive = false
    /// Heartbeat rounds in a row in which `match` did not move although entries were owed.
    var stalledRounds = 0
    var matchAtLastRound: UInt64 = 0
    /// Ticks since the snapshot was sent (to resend a lost one).
    var snapshotTicks = 0

    init(next: UInt64) { self.next = next }

    mutating func becomeProbe() {
        if case .snapshot(let index) = state {
            next = max(match + 1, index + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflight = []
        stalledRounds = 0
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        inflight = []
        stalledRounds = 0
    }

    mutating func becomeSnapshot(_ index: UInt64) {
        state = .snapshot(index: index)
        inflight = []
        snapshotTicks = 0
    }

    /// The follower acknowledged through `index`; false when that is old news.
    mutating func acknowledge(_ index: UInt64) -> Bool {
        var updated = false
        if index > match {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        inflight.removeAll { $0 <= index }
        return updated
    }

    /// The follower rejected an append at `rejected`; back off to `newNext`. False when stale.
    mutating func backOff(rejected: UInt64, to newNext: UInt64) -> Bool {
        if state == .replicate {
            // A rejection of something already matched is an old, reordered message.
            guard rejected > match else { return false }
            next = max(match + 1, newNext)
            return true
        }
        guard next - 1 == rejected else { return false }
        next = max(min(rejected, newNext), 1)
        next = max(next, match + 1)
        probeSent = false
        return true
    }

    var isPaused: Bool {
        switch state {
        case .probe: probeSent
        case .replicate: false
        case .snapshot: true
        }
    }
}
