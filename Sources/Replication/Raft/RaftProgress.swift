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
    /// The leader's ticks since it last heard from this member (`Int.max`: not since it became
    /// leader, or since the member joined).
    var silentTicks = Int.max
    /// Heartbeat rounds in a row in which `match` did not move although entries were owed.
    var stalledRounds = 0
    var matchAtLastRound: UInt64 = 0
    /// Ticks since the snapshot was sent (to resend a lost one).
    var snapshotTicks = 0
    /// Snapshots sent in a row that the member did not catch up from: each doubles the wait before
    /// the next (``snapshotPatience(electionTicks:)``).
    var snapshotAttempts = 0
    /// Refusals in a row whose hint put the member's log below `match`, what it had acknowledged:
    /// it lost entries it had made durable (``RaftLostLog``).
    var refusalsBelowMatch = 0
    /// Where the member said its log ends once it was found to have lost entries (``RaftLostLog``);
    /// nil while it has not (its `match` is what it acknowledged, not what it holds then).
    var lostLogEnd: UInt64?

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
        snapshotAttempts = 0
        next = match + 1
        inflight = []
        stalledRounds = 0
    }

    mutating func becomeSnapshot(_ index: UInt64) {
        state = .snapshot(index: index)
        inflight = []
        snapshotTicks = 0
    }

    /// The ticks a snapshot sent to this member may take before it is sent again: two election
    /// timeouts, doubled for every snapshot before it that the member did not catch up from (it
    /// was lost, refused, or took longer to arrive), up to 32 times. A refused snapshot (one too
    /// large for the member's disk, or of a schema it cannot install) is thus not streamed again
    /// every two election timeouts, and a snapshot slower to transfer than that gets its time.
    func snapshotPatience(electionTicks: Int) -> Int {
        2 * electionTicks << min(snapshotAttempts, 5)
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

    /// The follower rejected the append after `rejected`; probe again from `newNext` (never below
    /// what is known to match). False when the rejection is stale (reordered or duplicated).
    mutating func backOff(rejected: UInt64, to newNext: UInt64) -> Bool {
        switch state {
        case .replicate: guard rejected > match else { return false }
        case .probe: guard next - 1 == rejected else { return false }
        case .snapshot: return false
        }
        state = .probe
        inflight = []
        probeSent = false
        next = max(match + 1, max(min(newNext, rejected), 1))
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
