import Store

/// Raft consensus for one group, as a pure state machine.
///
/// It does no I/O, reads no clock and draws no randomness of its own: the driver feeds it ticks
/// (``tick()``), messages from peers (``step(_:)``), proposals (``propose(_:)``), read requests
/// (``readIndex(context:)``) and news of what reached the disk (``persisted(through:term:)``),
/// and collects what to do next with ``takeReady()``. The product's driver and the simulator run
/// this same code.
///
/// Features: pre-vote, check-quorum with leader lease, leadership transfer, pipelined appends with
/// flow control and fast back-off, the leader's own log write in parallel with replication,
/// snapshots, one-server-at-a-time membership changes, ReadIndex.
public struct Raft: Sendable {
    public let id: String
    public let configuration: RaftConfiguration
    var random: SplitMix64

    public internal(set) var term: UInt64
    public internal(set) var vote: String?
    public internal(set) var leader: String?
    public internal(set) var role: RaftRole = .follower
    var log: RaftLog
    public internal(set) var membership: RaftMembership
    /// The index of the entry (or snapshot) `membership` comes from.
    var membershipIndex: UInt64

    /// Leader: what it knows about each other member.
    var progress: [String: RaftProgress] = [:]
    /// Leader: members it removed that may not know yet (``Departure``).
    var departing: [String: Departure] = [:]
    /// The index of a committed membership that leaves this member out, as a leader told it
    /// (``RaftMessage/Body/removed(index:)``) because this member's log could not be brought up
    /// to it. While its own membership is older than that, it does not campaign.
    public internal(set) var removalNotice: UInt64?

    /// A member this leader removed. A membership takes effect when it is appended, so the leader
    /// stops replicating to the member at once and the removal commits without it: told nothing,
    /// it would go on campaigning for ever, refused by everyone. Once the removal has committed,
    /// the leader sends it the entries through the removal with each heartbeat, until it has
    /// them (then it knows it is out, and stops) or ``Raft/farewellHeartbeats`` have passed.
    struct Departure: Sendable {
        var match: UInt64
        var removalIndex: UInt64
        var heartbeatsLeft: Int
    }
    /// Candidate or pre-candidate: the answers so far.
    var votes: [String: Bool] = [:]
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout: Int
    /// Elections this member started as a candidate since it was restored (after a pre-vote it
    /// won, or when a leader handed it the leadership), for the driver's metrics.
    public internal(set) var electionsStarted: UInt64 = 0
    /// Leader: the member it is handing leadership to, and for how long it has tried.
    public internal(set) var transferee: String?
    /// As leader, the forwarded proposals it appended this term, by follower and forward id: where
    /// each went. A follower sends one again when it had no answer in time (its frame, or the
    /// answer, may have been lost), and a repeat is answered from here instead of appended again.
    var forwardsTaken: [String: [UInt64: UInt64]] = [:]
    /// At most this many are remembered per follower (its forward ids only grow).
    static let forwardsRemembered = 4096
    /// The largest term (the views and the wire keep terms as signed 64-bit numbers).
    public static let largestTerm = LogEntry.largestPosition
    /// The largest log index a message may carry, and the term past which terms are taken one
    /// step at a time (``RaftDisregarded/Cause/outOfRange``): 2^32 below ``largestTerm``, so that
    /// a message of a made-up term leaves the region that many elections, and the log that many
    /// entries.
    public static let largestAccepted = largestTerm - (1 << 32)
    var transferElapsed = 0
    /// Leader: ticks since it was elected (saturating).
    var leadingTicks = 0

    /// Leader: linearizable reads waiting for a quorum's heartbeat acknowledgement.
    var pendingReads: [PendingRead] = []
    /// Leader: reads that arrived before an entry of this term was committed.
    var readsAwaitingCommit: [(origin: String, context: UInt64)] = []
    var readRound: UInt64 = 0

    var ready = RaftReady()
    var lastHardState: HardState
    /// Leader: entries were appended since the pipelines were last filled.
    var hasUnsentEntries = false

    struct PendingRead: Sendable {
        var round: UInt64
        var origin: String
        var context: UInt64
        var index: UInt64
        var acks: Set<String>
    }

    /// Restores a member from what its driver persisted.
    /// - Parameters:
    ///   - snapshot: the snapshot the log was compacted behind (index 0 and the initial
    ///     membership for a log that never was).
    ///   - entries: the entries after the snapshot, in order.
    ///   - seed: seeds the election-timeout randomness.
    /// `removalNotice`: the ``removalNotice`` a leader gave this member before it restarted (its
    /// driver keeps it), so a member removed while away does not campaign again at its start.
    public init(
        id: String, configuration: RaftConfiguration = RaftConfiguration(), seed: UInt64, hardState: HardState,
        snapshot: RaftSnapshotMeta, entries: [LogEntry], removalNotice: UInt64? = nil
    ) {
        self.id = id
        self.removalNotice = removalNotice
        self.configuration = configuration
        random = SplitMix64(seed: seed)
        term = hardState.term
        vote = hardState.vote
        log = RaftLog(snapshot: snapshot, entries: entries, committed: hardState.commit)
        lastHardState = hardState
        membership = snapshot.membership
        membershipIndex = snapshot.index
        randomizedElectionTimeout = configuration.electionTicks
        refreshMembership()
        resetElectionTimer()
        // A kept removal notice is news to the driver (it logs it) at the first ready.
        if isToldRemoved { ready.statusChanged = true }
    }

    // MARK: - What the driver reads

    public var lastIndex: UInt64 { log.lastIndex }
    public var lastTerm: UInt64 { log.lastTerm }
    public var committed: UInt64 { log.committed }
    /// Whether an entry of the current term has committed (a new leader's no-op, a round trip
    /// after its election); a membership change waits for it.
    public var committedInCurrentTerm: Bool { log.term(at: log.committed) == term }
    public var applied: UInt64 { log.applied }
    public var snapshotMeta: RaftSnapshotMeta { log.snapshot }
    public var isLeader: Bool { role == .leader }

    /// The entry at `index`, if the in-memory log still holds it.
    public func entry(at index: UInt64) -> LogEntry? { log.entry(at: index) }

    public var status: RaftStatus {
        var matches: [String: UInt64] = [:]
        var lostLogs: [String: UInt64] = [:]
        if role == .leader {
            for (member, progress) in progress {
                matches[member] = progress.match
                if let end = progress.lostLogEnd { lostLogs[member] = end }
            }
            matches[id] = log.persisted
        }
        var status = RaftStatus(
            id: id, role: role, term: term, leader: leader, lastIndex: log.lastIndex, committed: log.committed,
            applied: log.applied, membership: membership, matches: matches,
            toldRemovedAt: isToldRemoved ? removalNotice : nil)
        status.lostLogs = lostLogs
        return status
    }

    /// Everything to do since the last call; see ``RaftReady`` for the order.
    public mutating func takeReady() -> RaftReady {
        if role == .leader { fillPipelines() }
        let upTo = min(log.committed, log.persisted)
        if upTo > log.applied {
            var index = log.applied + 1
            while index <= upTo, let entry = log.entry(at: index) {
                ready.committed.append(entry)
                index += 1
            }
            log.applied = index - 1
        }
        // A new term or vote is persisted before anything that depends on it is sent. A commit
        // index that moved alone is not worth a synced write (it is only where a restarted member
        // resumes applying; a lower one is safe): it rides along with the next write that happens
        // anyway. The committed entries themselves are durable already (≤ persisted).
        let hardState = HardState(term: term, vote: vote, commit: log.committed)
        let mustSync = hardState.term != lastHardState.term || hardState.vote != lastHardState.vote
        let writing = !ready.entries.isEmpty || ready.snapshot != nil || ready.truncateFrom != nil
        if hardState != lastHardState, mustSync || writing {
            ready.hardState = hardState
            lastHardState = hardState
        }
        let result = ready
        ready = RaftReady()
        return result
    }

    /// Whether ``takeReady()`` has something from the calls since the last one: messages, a term
    /// or vote to persist. A driver that ticks can skip waking its loop when a tick left nothing.
    public var hasPendingReady: Bool {
        !ready.isEmpty || term != lastHardState.term || vote != lastHardState.vote
    }

    /// The driver made this node's log durable through `index` (whose term was `term`).
    public mutating func persisted(through index: UInt64, term entryTerm: UInt64) {
        guard index > log.persisted, log.term(at: index) == entryTerm else { return }
        log.persisted = index
        if role == .leader, maybeCommit() { broadcastAppend() }
    }

    /// The driver took a snapshot of the applied state at `index` (≤ applied); the log before it
    /// goes. Returns the dropped entries (within the log's former storage) for the driver to free
    /// where it holds no lock: freeing 100,000 entries takes 10–15 ms, keeping only the few after
    /// `index` a few microseconds.
    @discardableResult
    public mutating func compact(through index: UInt64) -> [LogEntry] {
        guard index > log.snapshot.index, index <= log.applied else { return [] }
        return log.compact(through: index, membership: membership(at: index))
    }

    // MARK: - Time

    /// One tick of the driver's clock.
    public mutating func tick() {
        electionElapsed += 1
        if role == .leader {
            tickLeader()
        } else if electionElapsed >= randomizedElectionTimeout, isPromotable {
            electionElapsed = 0
            campaign(preVote: configuration.preVote, transfer: false)
        }
    }

    private mutating func tickLeader() {
        if leadingTicks < .max { leadingTicks += 1 }
        heartbeatElapsed += 1
        if transferee != nil {
            transferElapsed += 1
            if transferElapsed >= configuration.electionTicks { transferee = nil }
        }
        for member in progress.keys {
            if progress[member]!.silentTicks < .max { progress[member]!.silentTicks += 1 }
            if case .snapshot = progress[member]!.state {
                progress[member]!.snapshotTicks += 1
                if progress[member]!.snapshotTicks
                    >= progress[member]!.snapshotPatience(electionTicks: configuration.electionTicks)
                {
                    progress[member]!.snapshotAttempts += 1
                    progress[member]!.becomeProbe()
                }
            }
        }
        if electionElapsed >= configuration.electionTicks {
            electionElapsed = 0
            if configuration.checkQuorum, !quorumRecentlyActive() {
                becomeFollower(term: term, leader: nil)
                return
            }
        }
        if heartbeatElapsed >= configuration.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
            detectStalls()
        }
    }

    var isPromotable: Bool { membership.isVoter(id) && !isToldRemoved }

    /// Whether a committed membership leaves this member out (one only appended may still be
    /// replaced by another leader's entries).
    public var isOutsideCommittedMembership: Bool { !membership.contains(id) && membershipIndex <= log.committed }

    /// Whether a leader told this member it was removed at an index its membership has not
    /// reached (a membership from a later index, one that added it again, supersedes the notice),
    /// or the member kept the notice itself when it saw its log's membership at that index, which
    /// leaves it out, commit (a restarted member's commit index may stop short of it: a commit
    /// index is saved with the next entries, and a leader that removed itself writes none).
    public var isToldRemoved: Bool {
        removalNotice.map { $0 > membershipIndex || ($0 == membershipIndex && !membership.contains(id)) } ?? false
    }

    mutating func resetElectionTimer() {
        electionElapsed = 0
        let spread = UInt64(max(configuration.electionTicks, 1))
        randomizedElectionTimeout = configuration.electionTicks + Int(random.next() % spread)
    }

    // MARK: - Sending

    mutating func send(_ body: RaftMessage.Body, to peer: String, term messageTerm: UInt64? = nil) {
        let message = RaftMessage(from: id, to: peer, term: messageTerm ?? term, body: body)
        switch body {
        case .vote, .voteResponse, .appendResponse:
            ready.messagesAfterPersist.append(message)
        default:
            ready.messages.append(message)
        }
    }

    // MARK: - Membership

    /// The latest membership in the log (committed or not), or the snapshot's.
    mutating func refreshMembership() {
        let previous = membership
        membership = log.snapshot.membership
        membershipIndex = log.snapshot.index
        for entry in log.entries.reversed() where entry.kind == .membership {
            if let decoded = try? RaftMembership(decoding: entry.payload) {
                membership = decoded
                membershipIndex = entry.index
                break
            }
        }
        if membership != previous {
            ready.statusChanged = true
            if role == .leader { syncProgressWithMembership() }
        }
    }

    func membership(at index: UInt64) -> RaftMembership {
        var found = log.snapshot.membership
        for entry in log.entries where entry.kind == .membership && entry.index <= index {
            if let decoded = try? RaftMembership(decoding: entry.payload) { found = decoded }
        }
        return found
    }

    /// Drops what a leader knows of the others (their progress, and the removed members it is
    /// still telling): on becoming anything else, and before a new leader syncs its own.
    mutating func forgetFollowers() {
        progress = [:]
        departing = [:]
    }

    mutating func syncProgressWithMembership() {
        for member in membership.all.keys where member != id && progress[member] == nil {
            progress[member] = RaftProgress(next: log.lastIndex + 1)
            departing[member] = nil
        }
        for member in progress.keys where !membership.contains(member) {
            departing[member] = Departure(
                match: progress[member]!.match, removalIndex: membershipIndex, heartbeatsLeft: Self.farewellHeartbeats)
            progress[member] = nil
        }
    }

    /// Heartbeats for which a leader goes on telling a removed member of its removal.
    static let farewellHeartbeats = 50

    /// Leader: tells `peer`, a node outside the membership that still campaigns (its pre-vote
    /// says its log ends at `lastIndex` in `term`), what it missed through the commit index, if
    /// its log matches this one there and the membership that leaves it out has committed.
    /// If its log cannot be brought up to the removal that way (the leader compacted the entries
    /// after its last one, its log differs there, or it is in a later term than the leader's,
    /// having campaigned while cut off, and would refuse the entries), it is told in one message
    /// that it was removed (``RaftMessage/Body/removed(index:)``): it then stops campaigning.
    mutating func sayFarewell(
        to peer: String, matchingAt lastIndex: UInt64, term lastTerm: UInt64, campaigningIn peerTerm: UInt64
    ) {
        guard role == .leader, departing[peer] == nil, membershipIndex <= log.committed else { return }
        guard lastIndex < log.committed, log.term(at: lastIndex) == lastTerm, peerTerm <= term + 1 else {
            send(.removed(index: membershipIndex), to: peer)
            return
        }
        departing[peer] = Departure(
            match: lastIndex, removalIndex: log.committed, heartbeatsLeft: Self.farewellHeartbeats)
    }

    /// A leader says this member was removed by the membership it committed at `index`.
    mutating func noteRemoval(at index: UInt64) {
        guard membership.contains(id), index > membershipIndex, removalNotice.map({ index > $0 }) ?? true else {
            return
        }
        removalNotice = index
        if role != .follower { becomeFollower(term: term, leader: nil) }
        electionElapsed = 0
        ready.statusChanged = true
    }
}
