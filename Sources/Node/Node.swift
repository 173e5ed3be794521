import Foundation
import GRDB
import Logging
import Metrics
import NIOPosix
import Query
import Scheduler
import ServiceLifecycle
import Store
import Synchronization

/// A DWCP node: the log, the views applied from it, the workers that react to committed records,
/// and the operations the API exposes (intents, SQL, watch, status).
///
/// `run()` (a swift-service-lifecycle `Service`) catches the views up with the log, then applies
/// new commits and runs the scheduler until graceful shutdown.
public final class Node: Service, Sendable {
    public let configuration: NodeConfiguration
    /// Held while this node lives: no second process opens the data directory meanwhile.
    let dataDirectoryLock: DataDirectoryLock
    public let log: LogStore
    public let views: ViewStore
    public let query: QueryEngine
    public let consensus: any Consensus
    /// The index the views have applied up to.
    public let applied: IndexWatermark
    /// The highest applied index something on this node waits for (``waitUntilApplied(_:)``): a
    /// follower's apply loop does not hold back entries that are asked for.
    let applyDemand = IndexWatermark(0)
    /// The answers of this member's intents, read as they apply (``IntentAnswers``).
    let intentAnswers = IntentAnswers()
    /// The views snapshots a compacted log starts behind (`DATA/snapshots`).
    public let snapshots: ViewSnapshots
    /// The digests of the views taken at `dwcp cluster verify`'s markers.
    let digests: ViewsDigests
    /// The last check of the members' views this member made as leader (`--verify-every`).
    let lastPeriodicVerify = Mutex<ViewsVerification?>(nil)
    let scheduler: SchedulerWorker
    /// Hosts' parsed labels, kept between placement rounds.
    let labelsCache = LabelsCache()
    let logger: Logger
    /// What `GET /metrics` serves.
    public let metrics: NodeMetrics
    /// The API's answers of status 500 that were logged, at most one a minute for each kind.
    let serverErrorsLogged = Mutex<[String: LogThrottle]>([:])
    /// Intent requests being answered now: a graceful stop waits for them (``drainIntents(timeout:)``).
    let intentsInFlight = Mutex(0)
    /// The host this node's host agent runs, once it registers it (``HostLivenessWatch`` claims
    /// it for this member in the views).
    let agentHost = Mutex<String?>(nil)
    /// The API's TLS now: the configuration's, until ``reloadCertificates()`` replaces it.
    let currentAPITLS: Mutex<APITLS?>

    /// Opens the node's data directory: verifies every log entry, upgrades views (and the
    /// snapshot they start from) written by an earlier dwcp, and rebuilds the views when they are
    /// missing or of a schema it cannot upgrade. A damaged log stops the node here.
    public convenience init(configuration: NodeConfiguration, logger: Logger) throws {
        try self.init(configuration: configuration, logger: logger, consensus: nil)
    }

    /// ``init(configuration:logger:)`` with the consensus built by `makeConsensus` from the opened
    /// log instead of the configuration's (tests use it to drive the node through cases that a real
    /// region produces only by chance).
    init(configuration: NodeConfiguration, logger: Logger, consensus makeConsensus: ((LogStore) -> any Consensus)?)
        throws
    {
        self.configuration = configuration
        self.logger = logger
        currentAPITLS = Mutex(configuration.apiTLS)
        try Self.createDataDirectory(configuration.dataDirectory)
        dataDirectoryLock = try DataDirectoryLock(directory: configuration.dataDirectory)
        metrics = NodeMetrics()
        do {
            log = try LogStore(path: configuration.logPath, metrics: metrics.log, logger: logger)
        } catch let error as StoreError where error.isLogDamage {
            throw NodeError(
                .unavailable,
                "the log in \(configuration.logPath) is damaged (\(error.message)). \(LogStore.damagedLogAdvice)",
                cause: error)
        }
        let identity = try DataDirectoryIdentity.check(
            configuration, logIsEmpty: log.lastIndex == 0 && log.snapshot.index == 0)
        let entries: Int
        do {
            entries = try log.verify()
        } catch let error as StoreError where error.isLogDamage {
            throw NodeError(
                .unavailable,
                "the log in \(configuration.logPath) is damaged: \(error.message). \(LogStore.damagedLogAdvice)",
                cause: error)
        }
        // A rebuild moves the file it replaces aside (``ViewStore/replacedPath``). One that fails
        // (here or at an earlier start) leaves it there, and says so: with a snapshot lost behind
        // a compacted log, it holds all that is left of what the log dropped. A start that
        // catches the views up removes every such file.
        var viewsCaughtUp = false
        defer {
            if !viewsCaughtUp, case let kept = ViewStore.replacedFiles(of: configuration.viewsPath), !kept.isEmpty {
                logger.error(
                    "the views a rebuild replaced are kept at \(kept.joined(separator: ", ")) until a start catches new views up: to go back to one, stop the node and move it (with its -wal file, if any) to \(configuration.viewsPath)"
                )
            }
        }
        views = try ViewStore(path: configuration.viewsPath)
        if let reason = views.rebuildReason {
            let from = log.snapshot.index > 0 ? "snapshot \(log.snapshot.index) and the log after it" : "the log"
            let kept = views.replacedPath.map { " (the file it replaces is kept at \($0) until they are)" } ?? ""
            logger.notice("\(reason): rebuilding the views from \(from) (\(entries) entries)\(kept)")
        }
        if let note = views.upgradeNote { logger.notice("\(note)") }
        applied = IndexWatermark(0)
        digests = ViewsDigests(views: views)
        snapshots = try ViewSnapshots(
            directory: configuration.dataDirectory + "/snapshots", views: views, applied: applied, logger: logger)
        var appliedIndex = try views.appliedIndex()
        if appliedIndex < log.snapshot.index {
            // Views rebuilt or lost on a compacted log (or a snapshot install cut short): start
            // from the snapshot the log begins behind.
            try snapshots.installAtStart(
                log.snapshot.index, memberID: configuration.replication.map { _ in configuration.nodeID })
            appliedIndex = try views.appliedIndex()
        }
        if appliedIndex + 1 < log.firstIndex {
            throw NodeError(
                .unavailable,
                "the views are at index \(appliedIndex) but the log starts at \(log.firstIndex): they cannot be rebuilt from this log"
            )
        }
        if appliedIndex > log.lastIndex {
            let remedy =
                configuration.replication == nil
                ? "move \(configuration.viewsPath) aside and start again to rebuild the views from the log (what they hold past index \(log.lastIndex) is then gone)"
                : NodeError.rejoinRemedy(configuration.nodeID)
            throw NodeError(
                .unavailable,
                "the views are at index \(appliedIndex), beyond the log's last index \(log.lastIndex): the log lost entries the views applied (its journal, \(log.path)/\(log.group).journal, gone or cut short?), or the views belong to another log. To go on: \(remedy)"
            )
        }
        query = try QueryEngine(path: configuration.viewsPath, limits: configuration.queryLimits)
        if let makeConsensus {
            consensus = makeConsensus(log)
        } else if let replication = configuration.replication {
            consensus = try RaftConsensus(
                nodeID: configuration.nodeID, log: log, snapshots: snapshots,
                snapshotEvery: configuration.snapshotEvery, configuration: replication, region: configuration.region,
                logger: logger, metrics: metrics)
        } else {
            consensus = LocalConsensus(log: log)
        }
        // Catch the views up before anything is served, so no reader sees them behind the log.
        applied.advance(to: appliedIndex)
        // What the views applied was committed, though the commit index saved with the log may
        // be older (a commit index that moved alone is not written): the status shows no member
        // with more applied than committed.
        consensus.committed.advance(to: appliedIndex)
        try Self.catchUp(views, applied, from: log, through: consensus.committed.value)
        let caughtUp = applied.value
        if caughtUp > appliedIndex {
            logger.notice("applied log entries \(appliedIndex + 1)...\(caughtUp) to the views")
            metrics.entriesApplied.increment(by: Int64(caughtUp - appliedIndex))
        }
        viewsCaughtUp = true
        for replaced in ViewStore.replacedFiles(of: configuration.viewsPath) {
            ViewStore.removeFiles(at: replaced)
            logger.notice(
                "the views are caught up through index \(caughtUp); removed \(replaced), the views a rebuild replaced")
        }
        scheduler = SchedulerWorker()
        // Recorded only now: a start refused above leaves the directory's identity as it was.
        if let identity {
            if identity.logHeldEntries { try Self.requireMatchingLog(log, views: views, configuration) }
            try DataDirectoryIdentity.record(identity, in: configuration.dataDirectory, logger: logger)
        }
        logger.info(
            "node \(configuration.nodeID) opened \(configuration.dataDirectory): log \(log.firstIndex)...\(log.lastIndex), views at \(caughtUp)"
        )
    }

    /// Returns once the node's replication port listens (at once for a single node); throws if
    /// the node stopped first. `dwcp serve` starts the API after it: a port the node cannot take
    /// then stops it before its API has answered anyone.
    public func waitUntilListening() async throws {
        _ = try await raft?.listening.wait(until: 1)
    }

    public func run() async throws {
        // An error that stops the node (a damaged log or views) still closes the waits below, so
        // nothing in this process waits for an index that will not come.
        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await HostLivenessWatch().run(node: self) }
                if let raft = self.raft {
                    group.addTask { try await raft.run() }
                    group.addTask { try await VoterHealthWatch().run(node: self, raft: raft) }
                    group.addTask { try await self.identifyRegion() }
                } else {
                    group.addTask { try await self.compactLocalLog() }
                }
                group.addTask { try await self.runApplyLoop() }
                group.addTask { try await self.runCheckpointLoop() }
                group.addTask { try await self.checkViews() }
                group.addTask { try await DiskSpaceWatch().run(node: self) }
                group.addTask { try await self.digests.run() }
                group.addTask { try await self.scheduler.run(node: self) }
                if let every = self.configuration.replication?.verifyEvery {
                    group.addTask { try await PeriodicVerifier(every: every).run(node: self) }
                }
                if let retention = self.configuration.historyRetention {
                    group.addTask { try await HistoryCompactor(retention: retention).run(node: self) }
                }
                if let host = self.configuration.registerHost {
                    group.addTask { try await self.registerIfMissing(host) }
                }
                if let agent = self.configuration.hostAgent {
                    group.addTask { try await HostAgent.run(node: self, configuration: agent) }
                }
                group.addTask {
                    // A graceful shutdown (SIGTERM) ends the loops, but a leader first hands its
                    // leadership over while they still run: the region's writes pause for a
                    // round trip, not for an election timeout.
                    try await gracefulShutdown()
                    // Its host, if its agent runs one, is not ready from now: said while it still can.
                    await self.reportHostStopping(within: .seconds(1))
                    if let raft = self.raft { _ = await raft.handOffLeadership(timeout: Self.handOffTimeout) }
                    // Intents in flight (a leader's now go to its successor) are answered first.
                    await self.drainIntents(timeout: Self.drainTimeout)
                    throw CancellationError()
                }
                // The loops run until cancelled; the first error ends them all.
                while try await group.next() != nil {}
            }
        } catch is CancellationError {
            // Graceful shutdown.
        } catch let error as NodeError where error.code == .unavailable && Task.isCancelled {
            // A wait ended by shutdown.
        } catch {
            failure = error
        }
        // The workers stopped, but what committed while they stopped (a scheduler's last placement)
        // is applied now, so a node shut down gracefully leaves its views at its commit index.
        if failure == nil {
            do {
                try Self.catchUp(views, applied, from: log, through: consensus.committed.value)
            } catch {
                logger.error("could not apply the last committed entries before stopping: \(error)")
            }
        }
        let why = failure.map { "the node stopped: \($0)" } ?? "the node is shutting down"
        applied.close(reason: why)
        applyDemand.close(reason: why)
        consensus.committed.close(reason: why)
        raft?.listening.close(reason: why)
        raft?.handedOver.close(reason: why)
        digests.settled.close(reason: why)
        snapshots.viewsChecked.close(reason: why)
        digests.finish()
        logger.info("node \(configuration.nodeID) stopped at applied index \(applied.value)")
        if let failure { throw failure }
    }

    /// For a directory whose log holds entries but no identity file names it: refuses a start
    /// under another region than the one all its hosts and VMs are in (a log from before intents
    /// for other regions were refused may hold several: then none is refused), and a single node
    /// over a region member's log (its first entry is the region's membership, or, compacted, it
    /// holds the region's Raft state: a single node saves none), which would commit entries alone.
    static func requireMatchingLog(_ log: LogStore, views: ViewStore, _ configuration: NodeConfiguration) throws {
        let region = configuration.region
        let regions = try views.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT region FROM hosts UNION SELECT DISTINCT region FROM vms")
        }
        if regions.count == 1, let only = regions.first, only != region {
            throw NodeError(
                .invalid,
                "this data directory names no node (no \(DataDirectoryIdentity.fileName)), and its log holds hosts and VMs of region \(only) alone, not \(region): start it with --region \(only)"
            )
        }
        // (A compacted member's log, its membership in the snapshot, went through as a single
        // node's.)
        var isMembers = log.hardState.term > 0
        if !isMembers, log.snapshot.index == 0, log.lastIndex >= log.firstIndex {
            isMembers = try log.entries(in: log.firstIndex...log.firstIndex).first?.kind == .membership
        }
        if configuration.replication == nil, isMembers {
            throw NodeError(
                .invalid,
                "this data directory names no node (no \(DataDirectoryIdentity.fileName)), and its log is a region member's: started without --listen (or as dwcp dev) it would commit entries alone; start it with dwcp serve --listen and its peers"
            )
        }
    }

    /// Creates the data directory (and its parents) unless it exists; says why not in words.
    static func createDataDirectory(_ path: String) throws {
        var made = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            made += "/" + component
            if mkdir(made, 0o755) != 0, errno != EEXIST {
                let reason = String(cString: strerror(errno))
                throw NodeError(.unavailable, "cannot create the data directory \(path): \(made): \(reason)")
            }
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw NodeError(.invalid, "cannot use \(path) as the data directory: it is not a directory")
        }
    }

    /// How long a stopping leader waits for its successor to take over: a hand-off takes a round
    /// trip or two (about 30 ms on loopback); past this the others elect a leader as after a crash.
    static let handOffTimeout = Duration.milliseconds(500)
    /// How long a stopping node waits for the intents it is answering to be answered.
    static let drainTimeout = Duration.seconds(1)

    /// Waits until no intent request is being answered, or `timeout` has passed. (The API serves
    /// until the node has stopped, so new ones may come meanwhile; the timeout bounds the wait.)
    func drainIntents(timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        while intentsInFlight.withLock({ $0 }) > 0, ContinuousClock.now < deadline {
            do { try await loop.sleep(for: .milliseconds(2)) } catch { return }
        }
    }

    /// Applies committed entries as they commit, in index order, until cancelled.
    func runApplyLoop() async throws {
        while true {
            let committed = try await consensus.committed.wait(until: applied.value + 1)
            try await applyCommitted(through: try await gatherFollowerBatch(committed: committed))
            // A wait whose index is reached returns without suspending: under a steady stream of
            // commits this loop would apply batch after batch on one event loop while its sockets
            // wait. Give the loop a turn between batches (the answers waiting on this one go first).
            await Task.yield()
        }
    }

    /// Checkpoints the views' WAL every ``ViewStore/checkpointEvery`` applied entries, beside the
    /// apply loop (on its own connection). A checkpoint that fails is logged and tried again at
    /// the next mark: the WAL only grows meanwhile.
    func runCheckpointLoop() async throws {
        var checkpointed = applied.value
        while true {
            checkpointed = try await applied.wait(until: checkpointed + ViewStore.checkpointEvery)
            do {
                try await views.checkpoint()
            } catch let error as CancellationError {
                throw error
            } catch {
                logger.warning("could not checkpoint the views' WAL at applied index \(checkpointed): \(error)")
            }
        }
    }

    /// Batches up to this many entries are applied on the thread the apply loop runs on (an event
    /// loop in `dwcp serve`): a few hundred microseconds of SQLite work with no disk wait (no
    /// fsync, no checkpoint; the WAL's pages go to the page cache), where a trip to GRDB's writer
    /// queue and back costs two thread wake-ups on the path of every intent. While a snapshot
    /// install holds the writer, batches go to the writer queue instead of waiting here.
    static let inlineApplyLimit = 64

    /// Whether a batch is applied on the apply loop's own thread: a short one, without a
    /// `history.compacted` record (which deletes up to ``ViewStore/historyRowsPerCompaction``
    /// rows of each history table, tens of milliseconds: bench/store, "History compaction").
    static func appliesInline(_ batch: [LogEntry]) -> Bool {
        batch.count <= inlineApplyLimit
            && !batch.contains { $0.kind == .record && Record.isHistoryCompaction($0.payload) }
    }

    private func applyCommitted(through target: UInt64) async throws {
        var next = applied.value + 1
        while next <= target {
            var batch: [LogEntry]
            do {
                batch = try log.entries(in: next...target, maxCount: 4096)
            } catch let error as StoreError where error.code == .compacted {
                // A snapshot from the leader replaced these entries; installing it moves the
                // applied index past them.
                _ = try await applied.wait(until: log.snapshot.index)
                next = applied.value + 1
                continue
            }
            guard !batch.isEmpty else {
                throw StoreError(.corruptEntry, "log entry \(next) is missing", index: next)
            }
            // A batch ends at a views digest's marker, hashed as it stands right after it.
            let marker = batch.firstIndex(where: \.isViewsDigestMarker)
            if let marker { batch.removeSubrange((marker + 1)...) }
            do {
                let started = ContinuousClock.now
                let wanted = intentAnswers.wanted(in: batch[0].index...batch[batch.count - 1].index)
                let inline = Self.appliesInline(batch) ? try views.applyUnlessReplacing(batch, answering: wanted) : nil
                let (index, answers) = if let inline { inline } else { try await views.apply(batch, answering: wanted) }
                intentAnswers.deliver(answers)
                metrics.applyDuration.record(duration: started.duration(to: .now))
                // Only this batch's entries (a snapshot installed meanwhile may have moved `index` past it).
                metrics.entriesApplied.increment(by: Int64(batch.count { $0.index >= next && $0.index <= index }))
                // (The snapshot opens before the index is told applied: a wait for the digest
                // that sees the index applied finds the digest begun.)
                if let marker, batch[marker].index == index {
                    digests.markerApplied(index) { try views.openSnapshot() }
                }
                applied.advance(to: index)
                next = index + 1
            } catch {
                if let full = DiskSpace.blame(error, at: configuration.dataDirectory) {
                    // The transaction rolled back and the log keeps every entry: space, not damage.
                    logger.critical(
                        "cannot apply the log: \(error): \(full). The node stops; nothing is lost (the views' transaction rolled back, and the log keeps every entry): free space there and start it again"
                    )
                    throw NodeError(.unavailable, "\(full): free space there and start the node again", cause: error)
                }
                logger.critical("cannot apply the log: \(error); the node stops rather than serve wrong state")
                throw error
            }
        }
    }

    /// Applies committed entries up to `target` synchronously: at start, before anything is
    /// served, and at shutdown, after the workers stopped (nothing awaits it either time).
    private static func catchUp(
        _ views: ViewStore, _ applied: IndexWatermark, from log: LogStore, through target: UInt64
    ) throws {
        var next = applied.value + 1
        let start = next
        while next <= target {
            let batch = try log.entries(in: next...target, maxCount: 4096)
            guard !batch.isEmpty else { break }
            let index = try views.apply(batch)
            applied.advance(to: index)
            next = index + 1
        }
        // Commits do not checkpoint: after a long catch-up (a rebuild), fold the WAL in now.
        if next - start >= ViewStore.checkpointEvery { try views.checkpointNow() }
    }

    /// A single node's snapshots: every `snapshotEvery` applied entries, copy the views into
    /// `DATA/snapshots` and compact the log behind the copy (a region's members do the same in
    /// ``RaftConsensus``). A restart on the compacted log starts from the snapshot.
    func compactLocalLog() async throws {
        var missing = snapshots.missingBehindLog(log.snapshot.index)
        while true {
            if !missing { _ = try await applied.wait(until: log.snapshot.index + configuration.snapshotEvery) }
            missing = false
            let index = try await snapshots.take()
            guard let term = try log.term(at: index) else {
                throw NodeError(
                    .internal, "views snapshot at \(index) is outside the log (\(log.firstIndex)...\(log.lastIndex))")
            }
            try await log.compact(through: index, term: term)
            snapshots.prune(behind: log.snapshot.index)
            logger.info("views snapshot at \(index); the log now starts at \(index + 1)")
        }
    }

    /// The time a record proposed now carries (milliseconds since the Unix epoch).
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    private func registerIfMissing(_ host: HostRegistration) async throws {
        let added = HostAdded(
            name: host.name, region: configuration.region, cpus: host.cpus, memoryBytes: host.memoryBytes,
            labels: host.labels)
        guard
            let index = try await registerSelf(
                added, requestID: HostAgent.configuredRegistrationID(nodeID: configuration.nodeID, host: host.name))
        else { return }
        logger.notice(
            "registered this machine as host \(host.name) (\(formatCPUs(host.cpus)), \(host.memoryBytes) bytes) at index \(index)"
        )
    }
}
