import CoreMetrics
import Prometheus
import Replication
import Store
import Synchronization

/// The node's metrics, served in Prometheus' text format at `GET /metrics`: how long intents take
/// and how they end, the log's writes and checkpoints, the views' applies, the region's Raft state
/// (term, leader, indexes, each member's match on the leader, elections, snapshots, proposals
/// carried through a change of leader), history compaction, the leader's own verifies of the members' views
/// and rejected replication frames.
///
/// Each node has a registry of its own (several nodes can live in one test process); the code
/// that records goes through swift-metrics with this node's factory.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// What the log store records.
    let log: LogMetrics
    /// An intent from its arrival at this node to its answer (a follower's includes the forward).
    let intentDuration: CoreMetrics.Timer
    let applyDuration: CoreMetrics.Timer
    let entriesApplied: CoreMetrics.Counter
    let leaderChanges: CoreMetrics.Counter
    /// Elections this node started as a candidate (brought up to Raft's own count at each scrape).
    private let electionsStarted: CoreMetrics.Counter
    private let electionsCounted = Mutex<UInt64>(0)
    /// Views snapshots this node took (every `--snapshot-every` applied entries).
    let snapshotsTaken: CoreMetrics.Counter
    /// Views snapshots this node streamed to a member that needed one.
    let snapshotsSent: CoreMetrics.Counter
    /// Views snapshots this node installed from the leader.
    let snapshotsInstalled: CoreMetrics.Counter
    /// `history.compacted` records this node proposed as leader.
    let historyCompactions: CoreMetrics.Counter
    /// Proposals a member forwarded that the leader refused because they were no record.
    let forwardsRefused: CoreMetrics.Counter
    /// Raft messages dropped because no member sends them (``RaftDisregarded``).
    let messagesDisregarded: CoreMetrics.Counter
    /// 1 while this node leads and keeps history past its retention because a member does not
    /// answer, or answers with views that cannot apply the record; else 0.
    let historyCompactionHeldBack: CoreMetrics.Gauge
    /// On the leader, 1 when its last own verify (`--verify-every`) found views that differ (a
    /// member named, or a table without a majority), 0 when all were alike; a verify some member
    /// did not answer leaves it as it was. 0 on a member that does not lead.
    let verificationDiffers: CoreMetrics.Gauge
    /// When the leader's last own verify compared the digests of more than half of the members,
    /// in seconds since 1970; 0 on a member that does not lead.
    let verificationLastCompared: CoreMetrics.Gauge
    /// The bytes this process may still write on the filesystem holding the data directory, and
    /// its size (``DiskSpaceWatch``, every 10 s).
    let dataDirectoryAvailable: CoreMetrics.Gauge
    let dataDirectorySize: CoreMetrics.Gauge
    /// On the leader, the voters that have not answered for 5 s or more (``VoterHealth``); 0 on
    /// a member that does not lead.
    let votersSilent: CoreMetrics.Gauge
    /// `dwcp_views_verifications_total`, one counter per outcome seen.
    private let verificationOutcomes = Mutex<[String: CoreMetrics.Counter]>([:])
    /// Proposals kept and sent again instead of failing their caller, by why.
    private let proposalsRetried: [ProposalRetry: CoreMetrics.Counter]
    private let term: CoreMetrics.Gauge
    private let isLeader: CoreMetrics.Gauge
    private let hasLeader: CoreMetrics.Gauge
    private let proposalsParked: CoreMetrics.Gauge
    private let lastIndex: CoreMetrics.Gauge
    private let commitIndex: CoreMetrics.Gauge
    private let appliedIndex: CoreMetrics.Gauge
    /// 1 once the views were found damaged (the next start rebuilds them), else 0.
    private let viewsDamaged: CoreMetrics.Gauge
    /// On the leader, each member's match index (removed when this node stops leading or the
    /// member leaves).
    private let memberMatches = Mutex<[String: CoreMetrics.Gauge]>([:])
    /// `dwcp_intents_total`, one counter per outcome seen.
    private let intentOutcomes = Mutex<[String: CoreMetrics.Counter]>([:])
    /// `dwcp_vm_starts_total` (by path) and `dwcp_vm_exits_total` (by how), of the microVMs on this
    /// node's host.
    private let vmStarts = Mutex<[String: CoreMetrics.Counter]>([:])
    private let vmExits = Mutex<[String: CoreMetrics.Counter]>([:])
    /// VMs placed on this node's host whose start waits for memory that ended microVMs still hold.
    let vmsWaitingForMemory: CoreMetrics.Gauge

    /// Latency buckets from 100 µs to 10 s: a write on a quiet region takes about a millisecond.
    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        self.factory = factory
        log = LogMetrics(factory: factory)
        intentDuration = CoreMetrics.Timer(label: "dwcp_intent_duration_seconds", factory: factory)
        applyDuration = CoreMetrics.Timer(label: "dwcp_views_apply_duration_seconds", factory: factory)
        entriesApplied = CoreMetrics.Counter(label: "dwcp_views_entries_applied_total", factory: factory)
        leaderChanges = CoreMetrics.Counter(label: "dwcp_raft_leader_changes_total", factory: factory)
        electionsStarted = CoreMetrics.Counter(label: "dwcp_raft_elections_started_total", factory: factory)
        snapshotsTaken = CoreMetrics.Counter(label: "dwcp_raft_snapshots_taken_total", factory: factory)
        snapshotsSent = CoreMetrics.Counter(label: "dwcp_raft_snapshots_sent_total", factory: factory)
        snapshotsInstalled = CoreMetrics.Counter(label: "dwcp_raft_snapshots_installed_total", factory: factory)
        historyCompactions = CoreMetrics.Counter(label: "dwcp_history_compactions_total", factory: factory)
        forwardsRefused = CoreMetrics.Counter(label: "dwcp_raft_forwards_refused_total", factory: factory)
        messagesDisregarded = CoreMetrics.Counter(label: "dwcp_raft_messages_disregarded_total", factory: factory)
        historyCompactionHeldBack = CoreMetrics.Gauge(label: "dwcp_history_compaction_held_back", factory: factory)
        dataDirectoryAvailable = CoreMetrics.Gauge(label: "dwcp_data_directory_available_bytes", factory: factory)
        dataDirectorySize = CoreMetrics.Gauge(label: "dwcp_data_directory_size_bytes", factory: factory)
        votersSilent = CoreMetrics.Gauge(label: "dwcp_raft_voters_silent", factory: factory)
        vmsWaitingForMemory = CoreMetrics.Gauge(label: "dwcp_host_vms_waiting_for_memory", factory: factory)
        verificationDiffers = CoreMetrics.Gauge(label: "dwcp_views_verification_differs", factory: factory)
        verificationLastCompared = CoreMetrics.Gauge(
            label: "dwcp_views_verification_last_compared_timestamp_seconds", factory: factory)
        proposalsRetried = Dictionary(
            uniqueKeysWithValues: ProposalRetry.allCases.map { reason in
                (
                    reason,
                    CoreMetrics.Counter(
                        label: "dwcp_raft_proposals_retried_total", dimensions: [("reason", reason.rawValue)],
                        factory: factory)
                )
            })
        term = CoreMetrics.Gauge(label: "dwcp_raft_term", factory: factory)
        isLeader = CoreMetrics.Gauge(label: "dwcp_raft_is_leader", factory: factory)
        hasLeader = CoreMetrics.Gauge(label: "dwcp_raft_has_leader", factory: factory)
        proposalsParked = CoreMetrics.Gauge(label: "dwcp_raft_proposals_parked", factory: factory)
        lastIndex = CoreMetrics.Gauge(label: "dwcp_log_last_index", factory: factory)
        commitIndex = CoreMetrics.Gauge(label: "dwcp_raft_commit_index", factory: factory)
        appliedIndex = CoreMetrics.Gauge(label: "dwcp_views_applied_index", factory: factory)
        viewsDamaged = CoreMetrics.Gauge(label: "dwcp_views_damaged", factory: factory)
    }

    /// Why a proposal was kept and sent again rather than failed (``RaftConsensus/propose(_:appliesOnce:)``).
    enum ProposalRetry: String, CaseIterable, Sendable {
        /// No leader was known when it came: it waited for one.
        case noLeader = "no_leader"
        /// The leader (this member, or the one it was sent to) refused it while handing its
        /// leadership over: it went to the next one.
        case refused
        /// It applies once, and the leader it went to lost its leadership before answering.
        case leaderChanged = "leader_changed"
        /// Another leader's entries replaced it before it committed: proposed again.
        case replaced
        /// It applies once, and the leader had not answered it within 500 ms: sent again (its
        /// frame may have been lost).
        case unanswered
    }

    /// Counts a proposal kept for `reason`.
    func countRetry(_ reason: ProposalRetry) { proposalsRetried[reason]?.increment() }

    /// Counts an intent that ended with `outcome` (applied, duplicate, rejected, invalid, unavailable, …).
    func countIntent(_ outcome: String) {
        count(outcome, in: intentOutcomes, label: "dwcp_intents_total")
    }

    /// Counts a microVM start on this node's host that booted its guest, by its path (cold, pool,
    /// restore).
    func countVMStart(path: String) { count(path, in: vmStarts, label: "dwcp_vm_starts_total", dimension: "path") }

    /// Counts a microVM on this node's host that ended, by how (stopped, halted, crashed,
    /// requested).
    func countVMExit(_ how: String) { count(how, in: vmExits, label: "dwcp_vm_exits_total", dimension: "how") }

    /// Counts one of the leader's own verifies by its outcome, and records what it found.
    func countPeriodicVerify(_ verification: ViewsVerification) {
        count(verification.verdict.rawValue, in: verificationOutcomes, label: "dwcp_views_verifications_total")
        // Incomplete: a member that differed and no longer answers is not known to be repaired,
        // so the gauge keeps what the last complete verify said; nothing compared, nothing moves.
        switch verification.verdict {
        case .differs: verificationDiffers.record(1)
        case .same: verificationDiffers.record(0)
        case .incomplete, .notCompared, .noMarker: break
        }
        if case .compared(let comparison) = verification.outcome, comparison.comparable, comparison.majorityAnswered {
            verificationLastCompared.record(Double(verification.at) / 1000)
        }
    }

    /// This member stopped leading: it no longer speaks for the region's views.
    func forgetPeriodicVerify() {
        verificationDiffers.record(0)
        verificationLastCompared.record(0)
    }

    /// Increments the counter of `outcome` among `counters` (made on first use).
    private func count(
        _ outcome: String, in counters: borrowing Mutex<[String: CoreMetrics.Counter]>, label: String,
        dimension: String = "outcome"
    ) {
        let counter = counters.withLock { counters in
            if let counter = counters[outcome] { return counter }
            let counter = CoreMetrics.Counter(label: label, dimensions: [(dimension, outcome)], factory: factory)
            counters[outcome] = counter
            return counter
        }
        counter.increment()
    }

    /// The text a scrape gets: the gauges read from the node now, then everything.
    func render(node: Node) -> String {
        let status = node.status()
        lastIndex.record(Double(status.lastIndex))
        commitIndex.record(Double(status.commitIndex))
        appliedIndex.record(Double(status.appliedIndex))
        viewsDamaged.record(status.viewsDamaged == nil ? 0 : 1)
        let consensus = node.consensus as? RaftConsensus
        let raft = consensus?.status
        term.record(Double(raft?.term ?? 1))
        isLeader.record(raft.map { $0.role == .leader ? 1 : 0 } ?? 1)
        hasLeader.record(raft.map { $0.leader != nil ? 1 : 0 } ?? 1)
        if let started = consensus?.electionsStarted {
            let new = electionsCounted.withLock { counted in
                defer { counted = max(counted, started) }
                return started > counted ? started - counted : 0
            }
            if new > 0 { electionsStarted.increment(by: Int64(new)) }
        }
        proposalsParked.record(Double(consensus?.forwarded.parkedCount ?? 0))
        // A member that no longer leads does not speak for the region's views (it forgets its
        // last verify); the new leader's first verify comes about 30 s after its election.
        if raft?.role != .leader { forgetPeriodicVerify() }
        let matches = raft?.matches ?? [:]
        memberMatches.withLock { gauges in
            for (member, gauge) in gauges where matches[member] == nil {
                gauge.destroy()
                gauges[member] = nil
            }
            for (member, match) in matches {
                let gauge =
                    gauges[member]
                    ?? CoreMetrics.Gauge(
                        label: "dwcp_raft_member_match_index", dimensions: [("member", member)], factory: factory)
                gauge.record(Double(match))
                gauges[member] = gauge
            }
        }
        return registry.emitToString()
    }
}
