import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Replication
import Store
import Synchronization

/// How a node takes part in a replicated region: its Raft id, the address its peers reach it at,
/// and the region's first members (for a new region) or none (`--join`: it waits to be added).
public struct ReplicationConfiguration: Sendable {
    public var listenHost: String
    public var listenPort: Int
    /// The `--peer` members (id → `host:port`; may include this node): a new region's first
    /// membership, and for a joining node where to reach the region before its log says so.
    public var peers: [String: String]
    /// True for a node added later with `dwcp cluster add-member`: it starts with an empty log.
    public var join: Bool
    public var raft: RaftConfiguration
    /// The driver's clock: one Raft tick.
    public var tickInterval: Duration
    /// With 10 ms ticks: heartbeats every 30 ms, elections after 300–600 ms of silence. Shorter
    /// timeouts fail over faster but call spurious elections on a loaded machine (etcd's default
    /// election timeout is 1 s).
    public static let defaultRaft = RaftConfiguration(
        electionTicks: defaultElectionTimeoutMilliseconds / 10, heartbeatTicks: 3)
    /// `dwcp serve --election-timeout`'s default: 30 ticks of 10 ms.
    public static let defaultElectionTimeoutMilliseconds = 300
    /// How long a node waits for the leader to answer a forwarded intent or a read-index request
    /// (through an election, for the next leader), and a deposed leader for news of the next.
    public var leaderAnswerTimeout: Duration = Self.defaultLeaderAnswerTimeout
    public static let defaultLeaderAnswerTimeout = Duration.seconds(2)

    /// Sets the election timeout (`dwcp serve --election-timeout`), and with it
    /// ``leaderAnswerTimeout``: at least three election timeouts, so that a wait for the next
    /// leader outlasts an election (one to two timeouts, and a pre-vote round).
    public mutating func setElectionTimeout(_ timeout: Duration) {
        raft.electionTicks = Int(timeout / tickInterval)
        leaderAnswerTimeout = max(Self.defaultLeaderAnswerTimeout, timeout * 3)
    }
    /// How long an intent the leader took may wait to commit before its caller is answered (503:
    /// it may still apply): a region without a majority answering would hold it for good.
    public var commitTimeout: Duration = .seconds(10)
    /// How long a follower may hold a few committed entries back to apply them in one batch,
    /// unless something on the node waits for them (zero: apply each commit at once). See
    /// ``Node/waitUntilApplied(_:)`` and BENCHMARKS.md, "Followers apply in batches".
    public var followerApplyDelay: Duration = Self.defaultFollowerApplyDelay
    public static let defaultFollowerApplyDelay = Duration.milliseconds(10)
    /// How often the leader checks on its own that every member's views hold the same rows, as
    /// `dwcp cluster verify` does (``PeriodicVerifier``); nil: never.
    public var verifyEvery: Duration? = Self.defaultVerifyEvery
    /// A check costs every member a read of its whole views (about a second per 100,000 VMs);
    /// hourly finds damage the day it happens at no cost worth measuring.
    public static let defaultVerifyEvery = Duration.seconds(3_600)
    /// Mutual TLS on the replication port (`--peer-cert-file` and the rest), or nil for plain TCP.
    public var tls: PeerTLS?

    public init(
        listenHost: String, listenPort: Int, peers: [String: String], join: Bool = false,
        raft: RaftConfiguration = Self.defaultRaft, tickInterval: Duration = .milliseconds(10)
    ) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.peers = peers
        self.join = join
        self.raft = raft
        self.tickInterval = tickInterval
    }
}

/// The Raft driver: runs the pure ``Raft`` state machine against the LMDB log and the NIO
/// transport, and implements the node's ``Consensus`` seam with it.
///
/// One loop owns the I/O: it takes a ready, sends the leader's messages, persists the ready in one
/// durable log write, sends the messages that depended on it, reports the fsync back to Raft
/// and advances the commit watermark the apply loop follows. Proposals arriving meanwhile are
/// gathered into the next ready (group commit). Ticks and incoming frames only touch the state
/// machine under its lock and wake the loop.
public final class RaftConsensus: Consensus {
    public let log: LogStore
    public let committed: IndexWatermark
    /// How far Raft has handed committed entries over (its applied index): the log can be
    /// compacted through no more. Unlike ``committed``, which the node moves up to what its views
    /// applied as it starts, this one moves only as Raft learns of commits.
    let handedOver: IndexWatermark
    /// 1 once the replication port listens; closed if ``run()`` ends before (the node's API
    /// starts after it, so a port that cannot be taken stops the node before it serves anything).
    let listening = IndexWatermark()
    public let nodeID: String
    let group: String
    let state: Mutex<Raft>
    let transport: RaftTransport
    let configuration: ReplicationConfiguration
    let logger: Logger
    let wakeups: AsyncStream<Void>
    let wake: AsyncStream<Void>.Continuation
    /// Addresses of the members, as the latest membership says.
    let addresses = Mutex<[String: String]>([:])
    /// One ``reportLostLog(_:)`` line a minute for each member.
    let lostLogThrottles = Mutex<[String: LogThrottle]>([:])
    /// One ``reportDisregarded(_:)`` line a minute for each kind of message and cause.
    let disregardedThrottles = Mutex<[String: LogThrottle]>([:])
    /// Proposals this follower forwarded to the leader, waiting for where they landed (first index, term).
    let forwards = PendingAnswers<(first: UInt64, term: UInt64)> {
        NodeError(
            .unavailable,
            "no leader took the forwarded intent in time (none was known, or it did not answer); retry it with the same request id"
        )
    }
    /// What the waiters in `forwards` proposed, to send it again to the next leader.
    let forwarded = ForwardedProposals()
    /// Linearizable reads waiting for their read index.
    let reads = PendingAnswers<UInt64> {
        NodeError(.unavailable, "the region did not confirm a read index in time (no leader, or no quorum); retry")
    }
    /// Status questions to other members (`dwcp cluster status`), waiting for their answers.
    let statusAnswers = PendingAnswers<(from: String, status: MemberStatus)> {
        NodeError(.unavailable, "no answer in time")
    }

    /// The views snapshots this node takes, sends and installs.
    let snapshots: ViewSnapshots
    /// Take a snapshot and compact the log every this many applied entries.
    let snapshotEvery: UInt64
    /// Counts the snapshots found damaged or gone as they were to be sent: each moves the snapshot
    /// loop to take a new one at once.
    let snapshotRetakes = IndexWatermark()
    /// The snapshots a retake was asked for, so that sends waiting with a damaged one ask once.
    let snapshotsRetaken = Mutex<Set<UInt64>>([])
    /// The snapshot chunks received and not yet written: a connection that brings more while
    /// eight wait stops reading until the disk catches up (``InboundBacklog``).
    let snapshotBacklog = InboundBacklog(limit: 8 * SnapshotChunk.size)
    /// Snapshots to stream to members that need them (peer, snapshot), in order.
    let snapshotSends: AsyncStream<RaftMessage>
    let snapshotSendQueue: AsyncStream<RaftMessage>.Continuation
    let metrics: NodeMetrics
    /// The leader the last status change named, to count leader changes.
    let notedLeader = Mutex<String?>(nil)
    /// Where this member's API listens (``advertiseAPI(_:)``), and where the others' do, as they said.
    let ownAPIAddress = Mutex<String?>(nil)
    let apiAddresses = Mutex<[String: String]>([:])
    /// The members this one has told its API address, and at which replication address.
    let apiToldTo = Mutex<[String: String]>([:])
    /// The region this member was started in (`--region`), told to the others and checked against
    /// what they tell (``MemberRegion``); nil: neither told nor checked.
    let region: String?
    /// How this member's region was founded (``MemberFounding``): a digest of the log's first
    /// entry; nil when this member does not know it (it joined after that entry was compacted
    /// away): then neither told nor checked.
    let founding: String?
    /// What the others said of their regions and foundings, and whom this member has told its own.
    let regions = Mutex(MemberRegions())
    /// Set once any member said another region or founding: until then a frame's sender needs no
    /// look at ``regions`` (one atomic load per frame, not a lock).
    let anyoneCutOff = Atomic<Bool>(false)
    /// Set once this member names its region's id on its connections (``ConnectionHello``).
    let namesRegionFlag = Atomic<Bool>(false)
    /// Set once this member is seen in the region's membership (``wasRemoved``).
    let wasMember = Atomic<Bool>(false)
    /// The removal index a leader told of that was logged (0: none), so it is logged once.
    let toldRemovedLogged = Atomic<UInt64>(0)
    /// The index of the committed membership that left this member out, once logged (0: none).
    let removalLogged = Atomic<UInt64>(0)
    /// Messages dropped for want of an address, and frames for another member that came here,
    /// logged at most once a minute each.
    let unknownAddressesLogged = Mutex(LogThrottle(interval: .seconds(60)))
    let misaddressedLogged = Mutex(LogThrottle(interval: .seconds(60)))
    let otherGroupsLogged = Mutex(LogThrottle(interval: .seconds(60)))
    /// The last status line logged, and the throttle of its repeats.
    let statusLogged = Mutex<(line: String, throttle: LogThrottle)>(("", LogThrottle(interval: .seconds(60))))

    public init(
        nodeID: String, log: LogStore, snapshots: ViewSnapshots, snapshotEvery: UInt64,
        configuration: ReplicationConfiguration, region: String? = nil, logger: Logger,
        metrics: NodeMetrics = NodeMetrics()
    ) throws {
        self.nodeID = nodeID
        self.region = region
        self.metrics = metrics
        self.log = log
        self.snapshots = snapshots
        self.snapshotEvery = snapshotEvery
        self.configuration = configuration
        self.logger = logger
        group = log.group
        var entries = log.lastIndex >= log.firstIndex ? try log.entries(in: log.firstIndex...log.lastIndex) : []
        var hardState = log.hardState
        if log.lastIndex == 0, !configuration.join {
            guard !configuration.peers.isEmpty else {
                throw NodeError(.invalid, "a new region needs its members (--peer ID@HOST:PORT), or --join")
            }
            // Every first member starts from the same first entry: the region's initial membership.
            // It is written before anything is sent (see `run`).
            let membership = RaftMembership(voters: configuration.peers)
            entries = [LogEntry(index: 1, term: 1, kind: .membership, payload: membership.encoded())]
            hardState = HardState(term: 1, vote: nil, commit: 0)
            bootstrap = (entries, hardState)
        } else {
            bootstrap = nil
        }
        founding = Self.founding(
            in: log.path, group: group, logIsEmpty: log.lastIndex == 0, first: entries.first, logger: logger)
        if !entries.isEmpty, !entries.contains(where: { $0.kind == .membership }), log.snapshot.index == 0 {
            throw NodeError(
                .invalid,
                "this data directory holds a single-node log without a membership: start a region from empty data directories"
            )
        }
        let snapshot = log.snapshot
        var snapshotMembership = RaftMembership()
        if snapshot.index > 0 {
            // The membership at the snapshot is in the snapshot's own members table.
            let described: MembershipRecord
            do {
                described = try snapshots.describe(snapshot.index).membership
            } catch {
                throw NodeError.unusableSnapshot(snapshot.index, error, memberID: nodeID)
            }
            snapshotMembership = RaftMembership(voters: described.voters, learners: described.learners)
        }
        let notice = Self.removalNotice(
            in: log.path, group: group, logger: logger,
            forThisLog: bootstrap == nil && Self.anyMembership(snapshotMembership, entries, holds: nodeID))
        let raft = Raft(
            id: nodeID, configuration: configuration.raft, seed: Self.seed(nodeID),
            hardState: hardState,
            snapshot: RaftSnapshotMeta(index: snapshot.index, term: snapshot.term, membership: snapshotMembership),
            entries: entries, removalNotice: notice)
        // A membership that added this member again supersedes the notice: it goes.
        if notice != nil, !raft.isToldRemoved { Self.discardRemovalNotice(in: log.path, group: group, logger: logger) }
        committed = IndexWatermark(min(log.hardState.commit, log.lastIndex))
        handedOver = IndexWatermark(raft.applied)
        // A member restarted on a log that held it in a membership and now leaves it out was removed
        // while it ran, or while it was away. (A joiner restarted before the entry that adds it
        // arrived holds no membership with itself: it is not removed.)
        if Self.anyMembership(snapshotMembership, entries, holds: nodeID) {
            wasMember.store(true, ordering: .releasing)
        }
        state = Mutex(raft)
        // The log's membership wins; the --peer addresses let a joining node answer the leader
        // before its log holds any membership.
        addresses.withLock { $0 = configuration.peers.merging(raft.membership.all) { _, logged in logged } }
        // Members reach this one at the address its membership gives; a different --listen port
        // is a port mapping, or a mistake that leaves the member unreachable: said once, loudly.
        if let own = raft.membership.all[nodeID], let port = Validation.hostAndPort(own)?.port,
            configuration.listenPort != 0, port != configuration.listenPort
        {
            logger.warning(
                "the region's membership has \(nodeID) at \(own), but it listens on port \(configuration.listenPort): the other members reach it only if \(own) leads here (a port mapping). If --listen is mistyped, start it again with --listen \(own); to move it, remove it and add it at the new address (dwcp cluster remove-member, add-member)"
            )
        }
        // A node joining under an id its --peer list gives another address: most likely a member's
        // id taken again by mistake, and such a node would wait for ever, never added (add-member
        // refuses an id that is a member already).
        if configuration.join, log.lastIndex == 0, let listed = configuration.peers[nodeID],
            let (host, port) = Validation.hostAndPort(listed), configuration.listenPort != 0,
            port != configuration.listenPort || Self.differentAddresses(host, configuration.listenHost)
        {
            logger.warning(
                "--peer gives \(nodeID), this node's id, the address \(listed), but it listens on \(configuration.listenHost):\(configuration.listenPort): a node that joins needs an id no member has. If \(nodeID) is a member, this node is never added under that id: start it with an id of its own (to move \(nodeID) itself, remove it and add it again at the new address)"
            )
        }
        // A member that has a log takes its membership from it: flags that would shape a new
        // region say so rather than seem to have taken effect.
        if bootstrap == nil, log.lastIndex > 0 {
            let logged = raft.membership.all
            if configuration.join {
                logger.notice(
                    "--join is for a member's first start: this one's log already holds the region's membership (\(raft.membership))"
                )
            } else if configuration.peers.contains(where: { logged[$0.key] != $0.value }) {
                logger.notice(
                    "--peer only shapes a new region: this member's membership comes from its log (\(raft.membership)); change it with dwcp cluster add-member and remove-member"
                )
            }
        }
        transport = RaftTransport(logger: logger, metrics: metrics.factory, tls: configuration.tls)
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (snapshotSends, snapshotSendQueue) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(16))
    }

    /// The first entry and hard state of a new region, still to be written.
    let bootstrap: (entries: [LogEntry], hardState: HardState)?

    /// A per-node seed for election timeouts (FNV-1a of the id and the time, so restarts differ).
    static func seed(_ nodeID: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in nodeID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash ^ UInt64(DispatchTime.now().uptimeNanoseconds)
    }

    // MARK: - Consensus

    public var isLeader: Bool { state.withLock { $0.isLeader } }

    /// Proposes on the leader; on a follower, forwards to the leader and waits for its answer.
    /// Either way it returns once the entries are committed, or throws. Through a change of leader
    /// it proposes again where that cannot apply the payloads twice (``ForwardedProposals``), and
    /// when another leader's entries replaced these before they committed (up to the answer
    /// timeout; each try waits up to that for a leader to take the payloads).
    /// `appended` is told where each try put the entries, before it waits for their commit.
    public func propose(
        _ payloads: [[UInt8]], appliesOnce: Bool, appended: (ClosedRange<UInt64>) -> Void
    ) async throws -> ClosedRange<UInt64> {
        let deadline = ContinuousClock.now + configuration.leaderAnswerTimeout
        while true {
            // A leader handing over refuses proposals: they wait, as forwards, for the next one.
            let leading = try withRaft { raft -> (ClosedRange<UInt64>, UInt64)? in
                raft.isLeader && raft.transferee == nil ? (try raft.propose(payloads), raft.term) : nil
            }
            let (range, term) =
                if let leading { leading } else { try await forward(payloads, appliesOnce: appliesOnce) }
            appended(range)
            // (Expired by the ticker: no timer task on every intent's path.)
            let commitDeadline = ContinuousClock.now + configuration.commitTimeout
            guard try await waitForCommit(of: range, proposedAsLeader: leading != nil, deadline: commitDeadline)
            else {
                // A member that forwarded the intent learns of its commit from the leader: one cut
                // off from it, or whose log fell behind, never does.
                let why =
                    leading != nil
                    ? "fewer than a majority of the region's voters answer"
                    : "fewer than a majority of the region's voters answer, or \(nodeID), which forwarded it to the leader, is behind the leader or cut off from it"
                throw NodeError(
                    .unavailable,
                    "the intent (log index \(range.upperBound)) has not committed within \(configuration.commitTimeout) as \(nodeID) sees it: \(why) (see dwcp cluster status); it may still apply once they do: retry it with the same request id"
                )
            }
            // The last entry committed with this term: by log matching, all of them did.
            if try log.term(at: range.upperBound) == term { return range }
            // Another leader's entry at the first index means none of these committed (one that
            // did would carry that index's entry with it), so proposing them again cannot apply
            // them twice. A compacted first index (nil) says nothing, nor does a batch whose
            // first entry committed: only payloads that apply once go again then.
            let firstTerm = try log.term(at: range.lowerBound)
            let replaced = firstTerm != nil && firstTerm != term
            guard replaced || appliesOnce, ContinuousClock.now < deadline else {
                throw NodeError(
                    .unavailable,
                    replaced
                        ? (appliesOnce
                            ? "leadership changed before this copy of the intent committed, and this copy did not apply: retry it with the same request id (another copy of it, sent to another member, may have applied: the retry then answers duplicate)"
                            : "leadership changed before the intent committed, and it did not apply: retry it")
                        : "leadership changed before the intent committed; it may or may not apply: retry it with the same request id"
                )
            }
            metrics.countRetry(replaced ? .replaced : .leaderChanged)
            logger.debug("\(group): entries \(range) did not commit as proposed; proposing them again")
        }
    }

    /// Waits until `range` commits as this member sees it; false at `deadline`. An intent this
    /// member took as leader fails sooner when it has since lost its leadership and heard from no
    /// leader for ``ReplicationConfiguration/leaderAnswerTimeout``: cut off, it cannot learn the
    /// outcome, and its client does better to retry at another member now than in 10 s (etcd
    /// answers "leader changed" at once). A leader deposed for a moment and elected again, or one
    /// that hears the new leader, waits on.
    private func waitForCommit(of range: ClosedRange<UInt64>, proposedAsLeader: Bool, deadline: ContinuousClock.Instant)
        async throws -> Bool
    {
        var leaderlessSince: ContinuousClock.Instant?
        while true {
            let slice = proposedAsLeader ? min(deadline, .now + .milliseconds(500)) : deadline
            if try await committed.wait(until: range.upperBound, deadline: slice) != nil { return true }
            let now = ContinuousClock.now
            guard now < deadline else { return false }
            // Removed (a leader that removed itself): no leader will tell it how the intent ended.
            if proposedAsLeader, wasRemoved {
                throw NodeError(
                    .unavailable,
                    "\(nodeID) was removed from the region before the intent (log index \(range.upperBound)) committed here; the members left may commit it: it may or may not apply; retry it with the same request id, at another member"
                )
            }
            let (leads, knowsLeader) = state.withLock { ($0.isLeader, $0.leader != nil) }
            guard !leads, !knowsLeader else {
                leaderlessSince = nil
                continue
            }
            let since = leaderlessSince ?? now
            leaderlessSince = since
            if now - since >= configuration.leaderAnswerTimeout {
                throw NodeError(
                    .unavailable,
                    "\(nodeID) lost its leadership before the intent (log index \(range.upperBound)) committed, and has heard from no leader for \(configuration.leaderAnswerTimeout) since (it is cut off from the others, or they have no majority): it may or may not apply; retry it with the same request id, at another member"
                )
            }
        }
    }

    /// Sends `payloads` to the leader; returns where it appended them, and in which term.
    private func forward(_ payloads: [[UInt8]], appliesOnce: Bool) async throws -> (ClosedRange<UInt64>, UInt64) {
        try refuseIfRemoved()
        // A node outside its own membership that knows no leader (one not added yet, or removed
        // and told nothing since) is told so here. One that knows a leader forwards: a learner
        // just added has not received the entry that adds it, and the leader decides.
        let (isMember, knowsLeader) = state.withLock { ($0.membership.contains(nodeID), $0.leader != nil) }
        guard isMember || knowsLeader else {
            throw NodeError(
                .unavailable,
                "\(nodeID) is not a member of the region as far as it knows (removed, or not yet added with dwcp cluster add-member) and knows no leader: send the intent to a member"
            )
        }
        // A member the others cut off for its --region knows no leader and never will.
        if !knowsLeader, let region, let others = regionOfTheOthers() {
            throw NodeError(
                .unavailable,
                "\(nodeID) was started with --region \(region), but most of the region's voters say \(others): they ignore it (see its log); send the intent to one of them"
            )
        }
        // So does one started with another --peer list than theirs.
        if !knowsLeader, foundingOfTheOthers() != nil {
            throw NodeError(
                .unavailable,
                "\(nodeID) was started with another --peer list than most of the region's voters (its log's first entry differs from theirs): they ignore it (see its log); send the intent to one of them"
            )
        }
        let count = UInt64(payloads.count)
        var waiter: UInt64?
        defer { if let waiter { forwarded.remove(waiter) } }
        let (first, term) = try await forwards.wait(timeout: configuration.leaderAnswerTimeout) { id in
            waiter = id
            forwarded.add(id, payloads, appliesOnce: appliesOnce)
            try withRaft { raft in sendForward(id, payloads, &raft) }
        }
        return (first...(first + count - 1), term)
    }

    /// Sends the forwarded proposal `id` to the leader, proposes it if this member leads now, or
    /// parks it while no leader is known or this one is handing over. Runs under the state
    /// machine's lock.
    private func sendForward(_ id: UInt64, _ payloads: [[UInt8]], _ raft: inout Raft) {
        if raft.isLeader, let range = try? raft.propose(payloads) {  // refused while handing over
            forwards.resolve(id, with: .success((range.lowerBound, raft.term)))
        } else if !raft.isLeader, let leader = raft.leader, (try? raft.forward(payloads, id: id)) != nil {
            forwards.note(id, askedOf: leader)
            forwarded.sent(id)
        } else {
            forwards.note(id, askedOf: nil)
            let reason: NodeMetrics.ProposalRetry = raft.isLeader ? .refused : .noLeader
            if forwarded.park(id, because: reason) { metrics.countRetry(reason) }
        }
    }

    /// Sends the parked forwarded proposals on, if a leader is known now.
    func sendParkedForwards() {
        guard forwarded.hasParked else { return }
        let sent = state.withLock { raft -> Bool in
            guard let leader = raft.leader else { return false }
            for (id, payloads) in forwarded.unpark(for: leader) where forwards.isWaiting(id) {
                sendForward(id, payloads, &raft)
            }
            return true
        }
        if sent { wake.yield() }
    }

    /// Sends again the forwarded proposals that apply once and had no answer within
    /// ``ForwardedProposals/resendAfter`` (their frame may have been lost).
    func resendUnansweredForwards() {
        let due = forwarded.unanswered()
        guard !due.isEmpty else { return }
        state.withLock { raft in
            for (id, payloads, first) in due where forwards.isWaiting(id) {
                if first { metrics.countRetry(.unanswered) }
                sendForward(id, payloads, &raft)
            }
        }
        wake.yield()
    }

    /// The leader answered forwarded proposals.
    private func receiveForwarded(_ answers: [RaftForwardedProposal]) {
        for answer in answers {
            if answer.refusedForGood {
                // Outside its own membership, the reason is that. Inside it, the leader could not
                // read the record (a newer member's), or it removed this member a moment ago and
                // this member has not heard yet (seen under load: the intent was answered 400 as
                // unreadable for the 18 ms before the member learnt its removal): both are said,
                // and as unavailable, since the intent is valid elsewhere.
                let error =
                    state.withLock({ $0.membership.contains(nodeID) })
                    ? NodeError(
                        .unavailable,
                        "the leader \(answer.from) refused the intent: it no longer counts \(nodeID) a member (removed a moment ago: send it to a member), or it reads no such record (is this member's dwcp newer than the leader's?)"
                    )
                    : NodeError(
                        .unavailable,
                        "the leader \(answer.from) refused the intent: it does not count \(nodeID) a member (removed, or not yet added with dwcp cluster add-member): send it to a member"
                    )
                forwards.resolve(answer.id, with: .failure(error))
                continue
            }
            guard let first = answer.firstIndex else {
                // Refused, so nothing was appended: it goes to the next leader. (A refusal from a
                // member it was no longer sent to is stale.)
                if forwards.askedOf(answer.id) == answer.from {
                    forwards.note(answer.id, askedOf: nil)
                    if forwarded.park(answer.id, because: .refused, refusedBy: answer.from) {
                        metrics.countRetry(.refused)
                    }
                }
                continue
            }
            forwards.resolve(answer.id, with: .success((first, answer.term)))
        }
    }

    /// A linearizable read index: the commit index once a quorum has confirmed this region's leader
    /// still leads (ReadIndex; a follower asks the leader). Serve the read once the views reach it.
    ///
    /// A question that is not answered, or answered "not now" (no leader, or leadership changing),
    /// is asked again, of whoever leads then, until the timeout: any index confirmed after the read
    /// came is one it may use.
    public func readIndex() async throws -> UInt64 {
        try refuseIfRemoved()
        // A node started with --join and not added yet (or one that never was a member) has no one
        // to ask: said at once, as for an intent, not after the read's timeout as "no leader".
        let (isMember, knowsLeader) = state.withLock { ($0.membership.contains(nodeID), $0.leader != nil) }
        guard isMember || knowsLeader else {
            throw NodeError(
                .unavailable,
                "\(nodeID) is not a member of the region as far as it knows (removed, or not yet added with dwcp cluster add-member) and knows no leader: it cannot confirm a read; ask a member, or read with --consistency local"
            )
        }
        return try await reads.ask(
            timeout: configuration.leaderAnswerTimeout, every: Self.readAskedAgainAfter, accepts: { _ in true }
        ) { [self] context in
            state.withLock { raft in
                raft.readIndex(context: context)
                if !raft.isLeader, let leader = raft.leader { reads.note(context, askedOf: leader) }
            }
            wake.yield()
        }
    }

    /// How long a read index question waits for its answer before it is asked again (lost with a
    /// connection, say): longer than any read takes unless something is lost, as asking again
    /// costs the leader another heartbeat round. One answered "not now" is asked again on the next
    /// tick, or when a leader is known.
    static let readAskedAgainAfter = Duration.seconds(1)

    private func receiveReads(_ answers: [RaftReadState]) {
        for answer in answers {
            if let index = answer.index {
                reads.resolve(answer.context, with: .success(index))
            } else if status.leader != nil {
                reads.askAgain(answer.context)  // on the next tick
            } else {
                reads.note(answer.context, askedOf: nil)  // asked again when a leader is known
            }
        }
    }

    public var status: RaftStatus { state.withLock { $0.status } }

    /// Elections this member started as a candidate since it started.
    var electionsStarted: UInt64 { state.withLock { $0.electionsStarted } }

    /// On a graceful shutdown: a leader hands its leadership to its ``Raft/successor`` and waits,
    /// up to `timeout`, until another member leads, so the region's writes pause for a round trip
    /// instead of an election timeout (a rolling upgrade stops every member in turn). Returns the
    /// new leader; nil when this member does not lead, no other voter answers lately, or the
    /// hand-off did not finish in time (the others then elect a leader as after a crash).
    func handOffLeadership(timeout: Duration) async -> String? {
        guard state.withLock({ $0.successor }) != nil else { return nil }
        let started = ContinuousClock.now
        do {
            let (leader, _) = try await moveLeadership(to: nil, timeout: timeout)
            let milliseconds = Int((started.duration(to: .now) / .milliseconds(1)).rounded())
            logger.info("\(group): handed leadership to \(leader) in \(milliseconds) ms before stopping")
            return leader
        } catch {
            logger.warning("\(group): could not hand leadership over before stopping: \(error)")
            return nil
        }
    }

    /// Hands leadership to `target` (nil: this leader's ``Raft/successor``) and waits, up to
    /// `timeout`, until another member leads; returns it. Throws when this member does not lead
    /// (naming the leader), when `target` is not a voter, when no voter could take over, or when
    /// none did in time.
    func moveLeadership(to target: String?, timeout: Duration) async throws -> (leader: String, term: UInt64) {
        let started = ContinuousClock.now
        try refuseIfRemoved()
        if let target, otherFounding(of: target) != nil {
            throw NodeError(
                .invalid,
                "\(target) was started with other members in its --peer list than this member was: its messages are ignored here, and it cannot lead this region"
            )
        }
        if let target, let other = otherRegion(of: target), let region {
            throw NodeError(
                .invalid,
                "\(target) says it was started with --region \(other), not \(region): it cannot lead this region")
        }
        let chosen = try withRaft { raft -> String in
            guard raft.isLeader else {
                throw ReplicationError(.notLeader, "\(nodeID) is not the leader", leader: raft.leader)
            }
            guard let chosen = target ?? raft.successor else {
                throw NodeError(.unavailable, "no other voter has answered lately: none can take over")
            }
            try raft.transferLeadership(to: chosen)
            return chosen
        }
        if chosen == nodeID { return (nodeID, status.term) }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        while started.duration(to: .now) < timeout {
            let status = self.status
            if let leader = status.leader, leader != nodeID, status.role != .leader {
                guard target == nil || leader == chosen else {
                    throw NodeError(
                        .unavailable, "\(leader) leads now (term \(status.term)), not \(chosen): it did not win")
                }
                return (leader, status.term)
            }
            try await loop.sleep(for: .milliseconds(2))
        }
        throw NodeError(
            .unavailable,
            "\(chosen) did not take over within \(timeout); \(nodeID) may still lead (the transfer is abandoned after an election timeout)"
        )
    }

    /// Whether two hosts are IP addresses, neither a wildcard, that differ (names are not looked
    /// up: `localhost` and `127.0.0.1` may be one host).
    static func differentAddresses(_ a: String, _ b: String) -> Bool {
        guard !Validation.isWildcardHost(a), !Validation.isWildcardHost(b),
            let first = try? SocketAddress(ipAddress: a, port: 0),
            let second = try? SocketAddress(ipAddress: b, port: 0)
        else { return false }
        return first.ipAddress != second.ipAddress
    }

    /// Proposes a membership change; returns its index once committed.
    public func changeMembership(_ change: RaftMembershipChange) async throws -> UInt64 {
        try await changeMembership(change, mayHandOver: true)
    }

    private func changeMembership(_ change: RaftMembershipChange, mayHandOver: Bool) async throws -> UInt64 {
        try refuseIfRemoved()
        // A leader just elected takes a change only once its first entry commits (a round trip):
        // it is waited for here rather than refused (Raft refuses if it is still not so).
        _ = try await leaderCommittedInItsTerm()
        // Nor has it heard from every voter yet, which the check of the change counts on: up to an
        // election timeout for them (a change sent on by a leader that handed over to this one
        // comes at once).
        let unheardUntil = ContinuousClock.now + configuration.tickInterval * configuration.raft.electionTicks
        while state.withLock({ $0.votersUnheardThisTerm }), ContinuousClock.now < unheardUntil {
            try await Task.sleep(for: .milliseconds(5))
        }
        switch change {
        case .addLearner(let id, _), .addVoter(let id, _), .promote(let id):
            if let other = otherRegion(of: id), let region {
                throw NodeError(
                    .invalid,
                    "\(id) says it was started with --region \(other), but this region is \(region): start it again with --region \(region) (a data directory records its region: one that is refused must be emptied first)"
                )
            }
            // Its messages are ignored here: as a voter it would raise the quorum and add no vote.
            if otherFounding(of: id) != nil {
                throw NodeError(
                    .invalid,
                    "\(id) was started with other members in its --peer list than this member was: its messages are ignored here; \(NodeError.rejoinRemedy(id, isMember: state.withLock { $0.membership.contains(id) }))"
                )
            }
            let address: String? =
                switch change {
                case .addLearner(_, let address), .addVoter(_, let address): address
                default: nil
                }
            // A node whose hello named another region's id (to this member, or in answer to it).
            if let address, let other = transport.otherRegion(at: address), let own = transport.regionID {
                throw NodeError(
                    .invalid,
                    "the node at \(address) said it belongs to another region (region id \(RegionIdentified.described(other)), this one's \(RegionIdentified.described(own))): check the address; a node joins this region from an empty data directory with --join"
                )
            }
        case .remove(let id):
            // A leader asked to remove itself hands its leadership over first; refused then as a
            // member that does not lead, naming the leader, the change goes on to the next leader
            // (the API relays it). The region's writes pause for a round trip, not for an
            // election timeout after the removal commits, and nothing is left in flight on a
            // member that no leader talks to. With no voter to take over, it removes itself.
            // (Checked first: a change the region would refuse moves no leadership. Once at most.)
            if mayHandOver, id == nodeID, state.withLock({ $0.isLeader && $0.membership.voters.count > 1 }) {
                _ = try withRaft { try $0.checkMembership(change) }
                if (try? await moveLeadership(to: nil, timeout: .seconds(1))) != nil {
                    return try await changeMembership(change, mayHandOver: false)
                }
            }
        }
        let (index, term) = try withRaft { raft in (try raft.proposeMembership(change), raft.term) }
        // Answered within the 10 s a member relaying the change waits for the leader.
        guard
            try await waitUntilCommitted(
                index, proposedIn: term, within: Self.membershipCommitTimeout,
                ifReplaced:
                    "leadership changed before the membership change committed; retry it with the same request id")
        else {
            throw NodeError(
                .unavailable,
                "the membership change at log index \(index) has not committed within \(Self.membershipCommitTimeout): the voters it needs do not answer; it may still take effect once they do (see dwcp cluster status)"
            )
        }
        return index
    }

    /// Proposes `payloads` only while this member leads in `term` (never forwarded: what a leader
    /// decided from what it alone knows, such as which members answer it), and returns their
    /// indexes once committed in that term.
    public func proposeAsLeader(_ payloads: [[UInt8]], inTerm term: UInt64) async throws -> ClosedRange<UInt64> {
        let range = try withRaft { raft -> ClosedRange<UInt64> in
            guard raft.isLeader, raft.term == term, raft.transferee == nil else {
                throw ReplicationError(.notLeader, "\(nodeID) no longer leads in term \(term)", leader: raft.leader)
            }
            return try raft.propose(payloads)
        }
        guard
            try await waitUntilCommitted(
                range.upperBound, proposedIn: term, within: configuration.commitTimeout,
                ifReplaced: "leadership changed before the entries at \(range) committed")
        else {
            throw NodeError(
                .unavailable, "the entries at \(range) have not committed within \(configuration.commitTimeout)")
        }
        return range
    }

    /// Proposes a no-op entry carrying `payload` on the leader, and returns its index once it
    /// committed in this leader's term.
    public func proposeNoop(payload: [UInt8]) async throws -> UInt64 {
        try refuseIfRemoved()
        let (index, term) = try withRaft { raft in (try raft.proposeNoop(payload: payload), raft.term) }
        guard
            try await waitUntilCommitted(
                index, proposedIn: term, within: configuration.commitTimeout,
                ifReplaced: "leadership changed before the entry at log index \(index) committed; try again")
        else {
            throw NodeError(
                .unavailable,
                "the entry at log index \(index) has not committed within \(configuration.commitTimeout): fewer than a majority of the region's voters answer (see dwcp cluster status)"
            )
        }
        return index
    }

    /// A new leader's commit index is the one it had as a follower until its first entry of its
    /// term commits (a round trip after the election): waited for here, up to the node's wait for an
    /// answer.
    public func leaderCommitIndex() async throws -> UInt64? {
        try refuseIfRemoved()
        guard let committedInTerm = try await leaderCommittedInItsTerm() else { return nil }
        guard committedInTerm else {
            throw NodeError(
                .unavailable,
                "\(nodeID) was just elected and has not yet committed an entry of its term: it cannot yet tell what the last leader acknowledged; try again"
            )
        }
        return state.withLock { $0.committed }
    }

    /// On the leader, waits (up to the node's wait for an answer) until it has committed an entry
    /// of its own term, a round trip after its election; returns whether it has. Nil when this
    /// member does not lead.
    private func leaderCommittedInItsTerm() async throws -> Bool? {
        let deadline = ContinuousClock.now + configuration.leaderAnswerTimeout
        while true {
            let (leading, current) = state.withLock { ($0.isLeader, $0.committedInCurrentTerm) }
            guard leading else { return nil }
            if current || ContinuousClock.now >= deadline { return current }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// How long a membership change may take to commit before its caller is answered.
    static let membershipCommitTimeout: Duration = .seconds(8)

    /// Runs `body` on the state machine, wakes the loop, and turns a refusal into the node's error.
    private func withRaft<T>(_ body: (inout Raft) throws -> T) throws -> T {
        do {
            let result = try state.withLock { try body(&$0) }
            wake.yield()
            return result
        } catch let error as ReplicationError {
            throw nodeError(error)
        }
    }

    /// Waits up to `timeout` for `index` to commit; false when it has not. Once it has, checks it
    /// still holds what this leader proposed in `term`, and throws `ifReplaced` when another
    /// leader's entry took its place.
    private func waitUntilCommitted(
        _ index: UInt64, proposedIn term: UInt64, within timeout: Duration, ifReplaced: String
    ) async throws -> Bool {
        guard try await committed.wait(until: index, deadline: ContinuousClock.now + timeout) != nil else {
            return false
        }
        guard try log.term(at: index) == term else { throw NodeError(.unavailable, ifReplaced) }
        return true
    }

    /// A Raft refusal as the node reports it: who leads (with its address) when this node does not.
    func nodeError(_ error: ReplicationError) -> NodeError {
        switch error.code {
        case .invalidChange:
            return NodeError(.conflict, error.message, cause: error)
        case .malformed, .oversized, .stalled, .foreignProtocol, .httpRequest, .unknownMessage, .invalidConfiguration:
            return NodeError(.invalid, error.message, cause: error)
        case .transferring:
            return NodeError(
                .unavailable, "\(error.message) (a transfer ends within an election timeout)", cause: error)
        case .notLeader, .unavailable:
            guard let leader = error.leader else {
                // (One started with --join and not added yet knows no leader, though the region has one.)
                guard state.withLock({ $0.membership.contains(nodeID) }) else {
                    return NodeError(
                        .unavailable,
                        "\(error.message): it is not a member of the region as far as it knows (removed, or not yet added with dwcp cluster add-member) and knows no leader; ask a member",
                        cause: error)
                }
                return NodeError(.unavailable, "\(error.message); the region has no leader right now", cause: error)
            }
            let (directions, api) = directions(to: leader)
            return NodeError(
                .unavailable, "\(nodeID) is not the leader: ask \(directions)", cause: error, leaderAPI: api)
        }
    }

    /// How to reach `leader`, for a refusal: its API address if it said (members before 103 frames
    /// do not), else where it replicates; and the API address alone (the errors' `leader_api`).
    /// An address this member does not know is asked for at once: the one the leader sent may
    /// have been lost (sent while the connection was down), and the next refusal names it.
    func directions(to leader: String) -> (text: String, api: String?) {
        if let api = apiAddress(of: leader) { return ("\(leader), whose API is at \(api)", api) }
        guard let address = addresses.withLock({ $0[leader] }) else {
            return ("\(leader) (its replication and API addresses are unknown)", nil)
        }
        askForAPIAddress(of: leader, at: address)
        return ("\(leader) (replication address \(address); its API address is unknown, asked for it: try again)", nil)
    }

    // MARK: - The loop

    /// Listens, ticks, receives and persists until cancelled.
    public func run() async throws {
        if let bootstrap, log.lastIndex == 0 {
            try await log.write(truncateFrom: nil, entries: bootstrap.entries, hardState: bootstrap.hardState)
        }
        // Messages are stepped on the event loop that decoded them (the state machine's lock is
        // held for microseconds). Snapshot chunks are written to disk, so they go to their own
        // task, which writes them on NIO's thread pool (tasks run on the event loops, which must
        // not wait for the disk), and so does the snapshot message that follows them: in order,
        // it finds its data. Sending a snapshot reads its file on the thread pool too. The queue
        // holds few chunks: past ``snapshotBacklog``'s limit the connection stops reading.
        let (snapshotFrames, snapshotFrameQueue) = AsyncStream.makeStream(
            of: RaftFrame.Content.self, bufferingPolicy: .unbounded)
        // The views are caught up with the commit index by now (Node.init).
        try noteRegionIDInViews()
        let port = try await listen(
            host: configuration.listenHost, port: configuration.listenPort, backlog: snapshotBacklog,
            connected: { [self] frame in
                // A member that connects in is up: answer it without waiting out a back-off left
                // from while it was down (a restarted follower gets its entries at once), and tell
                // it again where this member's API listens.
                guard frame.group == group else { return }
                if case .hello(let hello) = frame.content { learnAddress(from: hello) }
                guard let address = addresses.withLock({ $0[frame.sender] }) else { return }
                transport.retryNow(address)
                retellAPIAddress(to: frame.sender, at: address)
                retellRegion(to: frame.sender, at: address)
            }
        ) { [self] frame in
            guard frame.group == group else { return noteOtherGroup(frame) }
            guard frame.recipient == nodeID else {
                noteMisaddressed(frame)
                // A status question is answered as this member: the asker learns who listens at
                // the address it has for another (`dwcp cluster status` says so).
                if case .memberStatus(let exchange) = frame.content, exchange.status == nil, exchange.id != 0 {
                    receive(exchange)
                }
                return
            }
            switch frame.content {
            case .message, .snapshotChunk:
                // A member started in another region, or founded otherwise, is as good as cut off
                // (see MemberRegion, MemberFounding).
                guard !anyoneCutOff.load(ordering: .acquiring) || !isCutOff(frame.sender) else { return }
            default: break
            }
            switch frame.content {
            case .message(let message):
                if case .propose(let id, let payloads) = message.body, !recordsDecode(payloads) {
                    // Appended, it would stop every member at apply: the sender is told no.
                    logger.warning("\(group): \(frame.sender) forwarded a proposal that is no record; refused")
                    refuseForward(id, to: frame.sender)
                    metrics.forwardsRefused.increment()
                    return
                }
                if case .snapshot = message.body {
                    snapshotFrameQueue.yield(frame.content)
                } else {
                    state.withLock { $0.step(message) }
                    wake.yield()
                }
            case .snapshotChunk(let chunk):
                snapshotBacklog.added(chunk.data.count)
                snapshotFrameQueue.yield(frame.content)
            case .memberStatus(let exchange):
                receive(exchange)
            case .memberAPIAddress(let said):
                receive(said)
            case .memberRegion(let said):
                receive(said)
            case .memberFounding(let said):
                receive(said)
            case .hello:
                break  // the transport's: it never comes here
            }
        }
        let security = configuration.tls == nil ? "plain TCP" : "mutual TLS"
        logger.info("replication for \(group) on \(configuration.listenHost):\(port) as \(nodeID) (\(security))")
        listening.advance(to: 1)
        announce()
        defer {
            wake.finish()
            snapshotFrameQueue.finish()
            snapshotSendQueue.finish()
            let stopping = NodeError(.unavailable, "the node is shutting down")
            forwards.failAll(stopping)
            reads.failAll(stopping)
            statusAnswers.failAll(stopping)
        }
        // Closed however the loops end: a cancellation (every shutdown) ends them with an error,
        // and a listener left open holds this member, and its log, for as long as the process runs.
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    // The tick's timer is an event loop's own (`EventLoop.sleep`): no other thread wakes.
                    let loop = MultiThreadedEventLoopGroup.singleton.any()
                    while true {
                        try await loop.sleep(for: self.configuration.tickInterval)
                        // Most ticks only count (a heartbeat is due every few): wake the loop only
                        // when the tick left something to do, a hundred wake-ups a second fewer.
                        let pending = self.state.withLock { raft in
                            raft.tick()
                            return raft.hasPendingReady
                        }
                        self.forwards.expireOverdue()
                        self.committed.expireOverdue()
                        self.sendParkedForwards()
                        self.resendUnansweredForwards()
                        self.reads.expireOverdue()
                        self.statusAnswers.expireOverdue()
                        if pending { self.wake.yield() }
                    }
                }
                tasks.addTask { try await self.retellRegionsPeriodically() }
                tasks.addTask {
                    for await content in snapshotFrames {
                        switch content {
                        case .snapshotChunk(let chunk):
                            defer { self.snapshotBacklog.finished(chunk.data.count) }
                            _ = try await NIOThreadPool.singleton.runIfActive { self.snapshots.receive(chunk) }
                        case .message(let message):
                            if case .snapshot(let meta) = message.body, !self.snapshotDataArrived(meta) {
                                self.logger.debug(
                                    "\(self.group): snapshot \(meta.index) announced before its data; dropped")
                                continue
                            }
                            self.state.withLock { $0.step(message) }
                            self.wake.yield()
                        case .memberStatus, .memberAPIAddress, .memberRegion, .memberFounding, .hello:
                            break  // handled as they arrive, never queued here
                        }
                    }
                }
                tasks.addTask {
                    for await message in self.snapshotSends { await self.stream(message) }
                }
                tasks.addTask { try await self.takeSnapshots() }
                tasks.addTask {
                    for await _ in self.wakeups {
                        try await self.processReadies()
                    }
                }
                defer { tasks.cancelAll() }
                try await tasks.next()
            }
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
    }

    /// Counts a message no member sends (``RaftDisregarded``) and logs it, at most once a minute
    /// for each kind of message and cause (a flood of made-up names would fill a table kept by
    /// sender).
    func reportDisregarded(_ dropped: RaftDisregarded) {
        metrics.messagesDisregarded.increment()
        guard
            let held = disregardedThrottles.withLock({
                $0["\(dropped.kind) \(dropped.cause)", default: LogThrottle(interval: .seconds(60))].admit()
            })
        else { return }
        logger.warning(
            "\(group): dropped \(dropped.kind) of term \(dropped.term) from \(dropped.from): \(dropped.reason) (\(Self.whyDisregarded(dropped.cause)): without mutual TLS anyone who reaches the replication port can send one)\(LogThrottle.more(held))"
        )
    }

    /// What may have sent a message no member sends, as a log line says it.
    static func whyDisregarded(_ cause: RaftDisregarded.Cause) -> String {
        switch cause {
        case .outOfRange: "a forged frame, or a region whose terms passed the ceiling"
        // (Seen after two faults at once: a member restored from an old copy was elected while
        // another, which held entries acknowledged since, was down; back, that one answers so.)
        case .pastTheLog:
            "a stray or forged frame, or a member whose log holds entries this leader's does not: a member's data directory was restored from an older copy (this leader's, or a voter's), which can lose acknowledged writes; compare the members' logs (dwcp cluster status) before anything else"
        case .notAMember: "a stray or forged frame"
        }
    }

    /// Logs a follower whose log lost entries it had acknowledged (``RaftLostLog``), at most once
    /// a minute for each: it will not catch up as it is, and only an operator can mend it.
    func reportLostLog(_ lost: RaftLostLog) {
        guard
            let held = lostLogThrottles.withLock({ $0[lost.peer, default: LogThrottle(interval: .seconds(60))].admit() }
            )
        else { return }
        logger.error(
            "\(group): \(lost.peer)'s log ends at index \(lost.lastIndex), below the \(lost.acknowledged) it acknowledged as durable: it lost its log (restarted on an empty or older data directory?) and cannot catch up as this member. Remove it (dwcp cluster remove-member \(lost.peer)), empty its data directory, start it with --join and add it again (dwcp cluster add-member)\(LogThrottle.more(held))"
        )
    }

    func processReadies() async throws {
        while true {
            var ready = state.withLock { $0.takeReady() }
            if ready.isEmpty { return }
            // The log a snapshot replaced: freed on NIO's thread pool, not on this event loop.
            DroppedEntries.free(&ready.released)
            // Answers first: one that came with the news of a new leader still counts.
            receiveForwarded(ready.forwarded)
            receiveReads(ready.reads)
            if ready.statusChanged { noteStatus() }
            for lost in ready.lostLogs { reportLostLog(lost) }
            for dropped in ready.disregarded { reportDisregarded(dropped) }
            // Committed entries were made durable by earlier readies: the views need not wait
            // for this one's fsync, nor for its messages to be handed to the transport. (A ready
            // with a snapshot carries none: the snapshot covers them.)
            if let last = ready.committed.last {
                noteRegionID(committed: ready.committed)
                noteRemoval(committed: ready.committed)
                committed.advance(to: last.index)
                handedOver.advance(to: last.index)
            }
            send(ready.messages)
            if let snapshot = ready.snapshot {
                // The file is kept before the log starts over behind it: a node that crashes before
                // its views are replaced restores them from it when it starts.
                try snapshots.adoptReceived(snapshot.index)
            }
            var truncateFrom = ready.truncateFrom
            if let first = ready.entries.first, first.index <= log.lastIndex {
                truncateFrom = min(truncateFrom ?? first.index, first.index)
            }
            // What waited for the fsync (a follower's acknowledgement, a vote) is handed to the
            // transport by the log's writer thread the moment the write is durable, without
            // waiting for this task to be scheduled again (one step fewer on every write's path;
            // measured on the wire: BENCHMARKS.md, bench/region). A snapshot's acknowledgement
            // still waits for the views to be installed from it.
            let afterPersist = ready.messagesAfterPersist
            var whenDurable: (@Sendable () -> Void)?
            if ready.snapshot == nil && !afterPersist.isEmpty {
                whenDurable = { [self] in send(afterPersist) }
            }
            try await log.write(
                snapshot: ready.snapshot.map { ($0.index, $0.term) }, truncateFrom: truncateFrom,
                entries: ready.entries, hardState: ready.hardState,
                whenDurable: whenDurable)
            if let snapshot = ready.snapshot {
                try await snapshots.install(snapshot.index)
                try noteRegionIDInViews()
                metrics.snapshotsInstalled.increment()
                committed.advance(to: snapshot.index)
                handedOver.advance(to: snapshot.index)
                snapshots.prune(behind: log.snapshot.index)
                send(afterPersist)
            }
            if let last = ready.entries.last {
                state.withLock { $0.persisted(through: last.index, term: last.term) }
            }
        }
    }

    func send(_ messages: [RaftMessage]) {
        guard !messages.isEmpty else { return }
        let known = addresses.withLock { $0 }
        for message in messages {
            if case .snapshot = message.body {
                // The data goes first, on the snapshot sender's own task; the message follows it.
                snapshotSendQueue.yield(message)
                continue
            }
            guard let address = known[message.to] else {
                noteUnknownAddress(of: message.to)
                continue
            }
            transport.send(RaftFrame(group: group, message: message), to: address)
        }
    }

    /// A frame for another member came to this one: the sender's membership (or `--peer` list)
    /// gives that member this member's address. Dropped, and said at most once a minute.
    func noteMisaddressed(_ frame: RaftFrame) {
        guard !frame.recipient.isEmpty, let held = misaddressedLogged.withLock({ $0.admit() }) else { return }
        logger.warning(
            "\(group): \(frame.sender) sends frames for \(frame.recipient) to this member, \(nodeID)\(LogThrottle.more(held)): its membership or --peer list gives \(frame.recipient) this member's address; they are dropped. Check the address with dwcp cluster status (remove \(frame.recipient) and add it again at its own address)"
        )
    }

    /// A frame for a Raft group this member does not run was dropped: said at most once a minute.
    func noteOtherGroup(_ frame: RaftFrame) {
        guard let held = otherGroupsLogged.withLock({ $0.admit() }) else { return }
        logger.warning(
            "dropped a frame for group \(Validation.shown(frame.group)) from \(Validation.shown(frame.sender)): this member runs \(group) only (a member of a newer dwcp that runs more groups, or a stray frame)\(LogThrottle.more(held))"
        )
    }

    /// A message for a member whose replication address this one does not know was dropped:
    /// said at most once a minute (a member that joined with a `--peer` list that predates the
    /// leader cannot answer it until the leader says where it is).
    func noteUnknownAddress(of member: String) {
        guard let held = unknownAddressesLogged.withLock({ $0.admit() }) else { return }
        logger.warning(
            "\(group): cannot send to \(member): its replication address is not known here (not among the --peer addresses, and the log holds no membership naming it yet)\(LogThrottle.more(held)); start this member with --peer \(member)@HOST:PORT too"
        )
    }

    /// Whether every payload a member forwarded reads as a record this build knows (one that does
    /// not would stop every member at apply once committed).
    func recordsDecode(_ payloads: [[UInt8]]) -> Bool {
        payloads.allSatisfy { (try? Record(decoding: $0)) != nil }
    }

    /// ``RaftTransport/listen(host:port:connected:receive:)``, with an address it cannot take
    /// told in words (``NodeError/listening(on:flag:_:)``).
    private func listen(
        host: String, port: Int, backlog: InboundBacklog, connected: RaftTransport.Receiver?,
        receive: @escaping RaftTransport.Receiver
    ) async throws -> Int {
        do {
            return try await transport.listen(
                host: host, port: port, backlog: backlog, connected: connected, receive: receive)
        } catch {
            throw NodeError.listening(on: "\(host):\(port)", flag: "--listen", error) ?? error
        }
    }

    /// Tells `member` that its forwarded proposal `id` is refused for good.
    func refuseForward(_ id: UInt64, to member: String) {
        let term = state.withLock { $0.term }
        send([RaftMessage(from: nodeID, to: member, term: term, body: .proposeRefused(id: id))])
    }

    /// Whether the snapshot's membership or any membership entry holds `member`.
    static func anyMembership(_ snapshot: RaftMembership, _ entries: [LogEntry], holds member: String) -> Bool {
        snapshot.contains(member)
            || entries.contains {
                $0.kind == .membership && (try? RaftMembership(decoding: $0.payload))?.contains(member) == true
            }
    }

    /// Whether this member was removed from the region: it was in the membership (while it ran,
    /// or in its log before a restart) and a committed membership leaves it out, or a leader told
    /// it so (``Raft/removalNotice``). A member that joins is not a member until it is added, and
    /// is not "removed" meanwhile; nor is one whose removal is appended but not committed.
    public var wasRemoved: Bool {
        let wasMember = wasMember.load(ordering: .acquiring)
        return state.withLock { raft in
            raft.isToldRemoved || (wasMember && raft.isOutsideCommittedMembership)
        }
    }

    /// Throws when this member was removed (``wasRemoved``): an intent or a read it cannot serve
    /// fails at once, and not as "unavailable", which a client would retry for nothing.
    func refuseIfRemoved() throws {
        guard wasRemoved else { return }
        throw NodeError(
            .removed,
            "\(nodeID) was removed from the region: it takes no intents and serves no consistent reads; send them to a member (dwcp cluster status lists them), or add this one again (dwcp cluster add-member --learner, then promote)"
        )
    }

    func noteStatus() {
        let status = state.withLock { $0.status }
        if status.membership.contains(nodeID) { wasMember.store(true, ordering: .releasing) }
        if let index = status.toldRemovedAt, toldRemovedLogged.exchange(index, ordering: .relaxed) != index {
            Self.keepRemovalNotice(index, in: log.path, group: group, logger: logger)
            logger.error(
                "\(group): this member was removed from the region (by the membership committed at index \(index), as a leader said or this member saw): it stops campaigning, and takes no intents or reads. To bring it back, add it again (dwcp cluster add-member --learner, then promote)"
            )
        }
        let previous = notedLeader.withLock { noted in
            defer { noted = status.leader }
            return noted
        }
        if status.leader != nil && status.leader != previous { metrics.leaderChanges.increment() }
        if status.leader != previous {
            // What went to a leader that was may never be answered (it stopped, or was cut off).
            // Proposals that apply once go to the next leader; the others may be in the log
            // already, so their askers hear so now, not after the 2 s timeout.
            for id in forwards.waiting(askedOf: { $0 != nil && $0 != status.leader }) {
                if forwarded.appliesOnce(id) {
                    forwards.note(id, askedOf: nil)
                    if forwarded.park(id, because: .leaderChanged) { metrics.countRetry(.leaderChanged) }
                } else {
                    forwards.resolve(
                        id,
                        with: .failure(
                            NodeError(
                                .unavailable,
                                "leadership moved away from \(previous ?? "the leader") before it answered; the intent may or may not apply: retry it with the same request id"
                            )))
                }
            }
            // Read-index questions are asked again of the new leader (and those that waited for
            // one), as any index confirmed after the read came will do.
            if status.leader != nil {
                reads.askAgain(askedOf: { $0 != status.leader })
                reads.expireOverdue()
            }
        }
        let members = status.membership.all
        addresses.withLock { current in
            // Keep addresses of members being removed until they are gone from every membership.
            current.merge(members) { _, new in new }
        }
        noteAPIAddresses(members: members)
        noteRegions(members: members)
        let line =
            "\(group): \(nodeID) is \(status.role.rawValue) in term \(status.term), leader \(status.leader ?? "none"), members \(status.membership)\(status.toldRemovedAt.map { " (its log's; a leader says the membership at index \($0) leaves it out)" } ?? "")"
        // A member cut off campaigns again every election timeout with nothing changed (a pre-vote
        // keeps its term): the same line three times a second, for as long as it lasts. Said
        // again once a minute then, with how many times it was left out.
        let (admitted, left) = statusLogged.withLock { logged -> (Int?, (line: String, held: Int)?) in
            if logged.line == line { return (logged.throttle.admit(), nil) }
            // Another line: the one before is said to have come again, if it did, before it.
            let left = logged.throttle.heldBack > 0 ? (logged.line, logged.throttle.heldBack) : nil
            logged = (line, LogThrottle(interval: .seconds(60)))
            return (logged.throttle.admit(), left)
        }
        if let left { logger.info("\(left.line) (said \(left.held) more times until now)") }
        if let admitted { logger.info("\(line)\(LogThrottle.more(admitted))") }
        sendParkedForwards()
    }
}
