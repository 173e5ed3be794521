import CLMDB
import Dispatch
import Foundation
import Logging
import Synchronization

/// The durable, append-only fleet log of one replication group, kept in an LMDB environment.
///
/// Entries are keyed by index. Besides them the store keeps the Raft hard state and the snapshot
/// the log was compacted behind. Every write goes through one writer thread that gathers whatever
/// is queued into one group (group commit), appends the group to the redo journal
/// (``LogJournal``) and fdatasyncs it; a write's `async` call returns once that record is on disk.
/// The writer moves the journaled changes into LMDB in one synced transaction per checkpoint (every
/// ``checkpointInterval``, or sooner when they grow); until then reads find them in memory.
/// Opening the store replays whatever the journal holds beyond LMDB. Reads run on the caller's
/// thread in their own read transaction and are never held across an `await`.
///
/// One environment can hold several groups (the region group, later the global group); each
/// group has its own pair of named databases.
public final class LogStore: Sendable {
    /// What the log holds, as readers see it; replaced only by the writer thread.
    struct State: Sendable {
        /// The first index still in the log (snapshot index + 1).
        var firstIndex: UInt64 = 1
        /// The last index in the log, or the snapshot index when the log is empty behind it.
        var lastIndex: UInt64 = 0
        var lastTerm: UInt64 = 0
        var snapshotIndex: UInt64 = 0
        var snapshotTerm: UInt64 = 0
        var hardState = HardState()
        /// The journaled entries not yet checkpointed into LMDB, from ``unflushedStart`` to ``lastIndex``.
        var unflushed: [LogEntry] = []
        /// Counts the writer's LMDB writes, at their start and at their publication: a reader that
        /// sees it move while it read LMDB reads again (a truncation checkpointed meanwhile could
        /// have mixed two moments).
        var lmdbWrites: UInt64 = 0

        /// Entries from this index on are read from ``unflushed``, not from LMDB, which may still
        /// hold older ones there (a truncation not yet checkpointed).
        var unflushedStart: UInt64 { lastIndex + 1 - UInt64(unflushed.count) }
    }

    /// The writer thread's own bookkeeping of the journal.
    struct JournalCursor: Sendable {
        /// What LMDB holds (its `unflushed` is empty).
        var durable: State
        /// The sequence of the last record written (LMDB holds every record up to `checkpointed`).
        var sequence: UInt64
        var checkpointed: UInt64
        /// Where the next record goes.
        var offset = 0
        /// When the oldest record not yet checkpointed was written.
        var pendingSince: ContinuousClock.Instant?
        /// A record write failed since the last checkpoint: its bytes may be on disk with the
        /// next sequence, so the next LMDB write skips past it.
        var failedAppend = false
    }

    let environment: LMDBEnvironment
    let entriesDatabase: MDB_dbi
    let metaDatabase: MDB_dbi
    let state: Mutex<State>
    let writer: LogWriter
    /// The redo journal.
    let journal: LogJournal
    let cursor: Mutex<JournalCursor>
    /// How long journaled changes may wait before they are checkpointed into LMDB.
    let checkpointInterval: Duration
    /// Failures and pauses a test injects; nil in the product.
    let faults: LogFaults?
    let metrics: LogMetrics
    /// Where failed checkpoints are told (``CheckpointTrouble``).
    let logger: Logger
    /// The logger of a store opened without one (tests, benchmarks, tools): it says nothing.
    public static let silent = Logger(label: "dwcp.log", factory: { _ in SwiftLogNoOpLogHandler() })
    let checkpointTrouble = Mutex(CheckpointTrouble())
    /// Damage that reads met while the store is open, logged at most a line a minute.
    let damageMetLogged = Mutex(LogThrottle(interval: .seconds(60)))
    /// The directory of the LMDB environment.
    public let path: String
    /// The replication group this store holds.
    public let group: String

    /// Opens (creating if needed) the log of `group` in the LMDB environment at `path`, replaying
    /// into LMDB whatever its journal (`path/group.journal`) holds beyond it.
    /// - Parameters:
    ///   - initialMapSize: the first size of LMDB's memory map; it doubles whenever a write finds it full.
    ///   - journalCapacity: the bytes preallocated for the journal.
    ///   - checkpointInterval: how long journaled changes may wait before they go into LMDB.
    ///   - metrics: where the writes are reported.
    ///   - logger: where failed checkpoints are told.
    public convenience init(
        path: String, group: String = "region", initialMapSize: Int = 64 << 20,
        journalCapacity: Int = 4 << 20, checkpointInterval: Duration = .milliseconds(50), metrics: LogMetrics = .none,
        logger: Logger = LogStore.silent
    ) throws {
        try self.init(
            path: path, group: group, initialMapSize: initialMapSize, journalCapacity: journalCapacity,
            checkpointInterval: checkpointInterval, metrics: metrics, faults: nil, logger: logger)
    }

    /// The store with `faults` injected into its disk operations (tests).
    init(
        path: String, group: String = "region", initialMapSize: Int = 64 << 20,
        journalCapacity: Int = 4 << 20, checkpointInterval: Duration = .milliseconds(50), metrics: LogMetrics = .none,
        faults: LogFaults?, logger: Logger = LogStore.silent
    ) throws {
        // Held by the writer thread from its start to its end (a store that failed to open lets go here).
        let claim = try OpenLogClaim(path: path, group: group)
        self.path = path
        self.logger = logger
        self.group = group
        self.checkpointInterval = checkpointInterval
        self.metrics = metrics
        self.faults = faults
        environment = try LMDBEnvironment(path: path, initialMapSize: initialMapSize)
        entriesDatabase = try environment.openDatabase(named: "\(group).entries")
        metaDatabase = try environment.openDatabase(named: "\(group).meta")
        journal = try LogJournal(path: "\(path)/\(group).journal", capacity: journalCapacity, faults: faults)
        let (durable, sequence) = try Self.loadState(environment, entriesDatabase, metaDatabase)
        state = Mutex(durable)
        cursor = Mutex(JournalCursor(durable: durable, sequence: sequence, checkpointed: sequence))
        writer = LogWriter(name: "dwcp-log-writer-\(group)")
        try replayJournal()
        writer.start(store: self, holding: claim)
    }

    deinit {
        writer.stop()
    }

    /// Stops the writer thread after the queued writes and a last checkpoint; later writes fail
    /// with `.closed`.
    public func close() {
        writer.stop()
    }

    /// Stops the writer thread as a crash would leave the files: LMDB holds what the last
    /// checkpoint gave it, the journal the rest (tests of the replay).
    func closeWithoutCheckpoint() {
        writer.stop(lastCheckpoint: false)
    }

    // MARK: Bounds

    /// The first index present in the log.
    public var firstIndex: UInt64 { state.withLock { $0.firstIndex } }
    /// The last index in the log (0 when empty).
    public var lastIndex: UInt64 { state.withLock { $0.lastIndex } }
    /// The term of the last entry.
    public var lastTerm: UInt64 { state.withLock { $0.lastTerm } }
    /// The index and term the log was compacted behind (0, 0 when never compacted).
    public var snapshot: (index: UInt64, term: UInt64) { state.withLock { ($0.snapshotIndex, $0.snapshotTerm) } }
    /// The last saved hard state.
    public var hardState: HardState { state.withLock { $0.hardState } }
    /// The current size of the LMDB memory map.
    public var mapSize: Int { environment.mapSize }

    // MARK: Reading

    /// The entries with indexes in `range` that are present, in order. Reading below
    /// ``firstIndex`` throws `.compacted`; `maxCount` bounds how many are returned.
    public func entries(in range: ClosedRange<UInt64>, maxCount: Int = .max) throws -> [LogEntry] {
        try entries(in: range, maxCount: maxCount, loggingDamage: true)
    }

    /// ``entries(in:maxCount:)``; `loggingDamage`: whether damage met is logged too (not by
    /// ``verify(batchSize:)``, whose caller says it).
    func entries(in range: ClosedRange<UInt64>, maxCount: Int, loggingDamage: Bool) throws -> [LogEntry] {
        while true {
            let current = state.withLock { $0 }
            guard range.lowerBound >= current.firstIndex else {
                throw StoreError(
                    .compacted,
                    "compacted: entries before \(current.firstIndex) were compacted away; re-list from index \(current.firstIndex)",
                    index: current.firstIndex)
            }
            var result: [LogEntry] = []
            if range.lowerBound < current.unflushedStart {
                faults?.beforeDurableRead()
                result = try durableEntries(
                    in: range.lowerBound...min(range.upperBound, current.unflushedStart - 1), maxCount: maxCount,
                    loggingDamage: loggingDamage)
                guard state.withLock({ $0.lmdbWrites }) == current.lmdbWrites else { continue }
            }
            let low = max(range.lowerBound, current.unflushedStart)
            let high = min(range.upperBound, current.lastIndex)
            if low <= high && result.count < maxCount {
                let start = Int(low - current.unflushedStart)
                let end = start + min(Int(high - low) + 1, maxCount - result.count)
                result.append(contentsOf: current.unflushed[start..<end])
            }
            return result
        }
    }

    /// The entries LMDB holds in `range`. Damage met here, while the node runs (a watch, a
    /// follower's catch-up or the apply loop reading an entry that the disk changed since the start
    /// verified it), is also logged, at most a line a minute: the caller may answer only a client.
    func durableEntries(in range: ClosedRange<UInt64>, maxCount: Int, loggingDamage: Bool = true) throws
        -> [LogEntry]
    {
        do {
            return try Self.storedEntries(environment, entriesDatabase, in: range, maxCount: maxCount)
        } catch let error as StoreError where error.isLogDamage && loggingDamage {
            if let held = damageMetLogged.withLock({ $0.admit() }) {
                logger.error(
                    "the log in \(path) is damaged: \(error.message)\(LogThrottle.more(held)). The read that met it failed (a watch ends; the apply loop stops the node), and the next start refuses the log: \(Self.damagedLogAdvice)"
                )
            }
            throw error
        }
    }

    /// The entries an LMDB entries database holds in `range`, at most `maxCount`, verified.
    static func storedEntries(
        _ environment: LMDBEnvironment, _ entriesDatabase: MDB_dbi, in range: ClosedRange<UInt64>, maxCount: Int
    ) throws -> [LogEntry] {
        try environment.read { txn in
            var cursor: OpaquePointer?
            try LMDBEnvironment.check(mdb_cursor_open(txn, entriesDatabase, &cursor), "mdb_cursor_open")
            defer { mdb_cursor_close(cursor) }
            var result: [LogEntry] = []
            var keyBytes = Self.key(range.lowerBound)
            return try keyBytes.withUnsafeMutableBytes { keyBuffer in
                var key = MDB_val(mv_size: 8, mv_data: keyBuffer.baseAddress)
                var value = MDB_val()
                let bounds = environment.pageBounds()
                var rc = mdb_cursor_get(cursor, &key, &value, MDB_SET_RANGE)
                while rc == 0 && result.count < maxCount {
                    let index = try Self.index(fromKey: key)
                    if index > range.upperBound { break }
                    result.append(try LogEntry(index: index, frame: bounds.bytes(of: value)))
                    rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)
                }
                if rc != 0 && rc != MDB_NOTFOUND { try LMDBEnvironment.check(rc, "reading log entries in data.mdb") }
                return result
            }
        }
    }

    /// The entry at `index`, or nil when there is none.
    public func entry(at index: UInt64) throws -> LogEntry? {
        try entries(in: index...index).first
    }

    /// The term of the entry at `index` (the snapshot's term at its index, 0 at index 0).
    public func term(at index: UInt64) throws -> UInt64? {
        let b = state.withLock { $0 }
        if index == 0 { return 0 }
        if index == b.snapshotIndex { return b.snapshotTerm }
        if index < b.firstIndex || index > b.lastIndex { return nil }
        return try entry(at: index)?.term
    }

    /// Reads every entry and checks its checksum, version and kind; returns how many were read.
    /// Throws the first damage found, naming its index.
    @discardableResult
    public func verify(batchSize: Int = 4096) throws -> Int {
        var next = firstIndex
        let last = lastIndex
        var count = 0
        while next <= last {
            let batch = try entries(in: next...last, maxCount: batchSize, loggingDamage: false)
            guard let tail = batch.last else { break }
            for (offset, entry) in batch.enumerated() where entry.index != next + UInt64(offset) {
                throw StoreError(
                    .corruptEntry, "log entry \(next + UInt64(offset)) is missing", index: next + UInt64(offset))
            }
            count += batch.count
            next = tail.index + 1
        }
        if next <= last {
            throw StoreError(.corruptEntry, "log entry \(next) is missing", index: next)
        }
        return count
    }

    // MARK: Writing (all through the writer thread)

    /// Appends entries whose indexes follow ``lastIndex`` exactly, durably.
    public func append(_ entries: [LogEntry]) async throws {
        guard !entries.isEmpty else { return }
        _ = try await writer.submit(.append(entries))
    }

    /// Appends payloads at the next free indexes, durably, and returns the indexes they got.
    /// Concurrent callers are batched into one durable write (one journal record).
    public func appendNext(term: UInt64, kind: LogEntry.Kind = .record, payloads: [[UInt8]]) async throws
        -> ClosedRange<UInt64>
    {
        precondition(!payloads.isEmpty, "appendNext needs at least one payload")
        guard
            case .appended(let range) = try await writer.submit(.appendNext(term: term, kind: kind, payloads: payloads))
        else { preconditionFailure("appendNext completed without a range") }
        return range
    }

    /// Persists what one Raft ready asks for in one durable write: start the log over behind
    /// `snapshot` (every entry goes), drop the entries from `truncateFrom` on, append `entries`,
    /// save `hardState`. All of it lands, or none. `whenDurable` runs once it has landed, on the
    /// log's writer thread, before this call returns (keep it short: the next group waits for it);
    /// when there is nothing to write it runs at once, on the caller's thread.
    public func write(
        snapshot: (index: UInt64, term: UInt64)? = nil, truncateFrom: UInt64?, entries: [LogEntry],
        hardState: HardState?, whenDurable: (@Sendable () -> Void)? = nil
    ) async throws {
        var operations: [LogWriter.Operation] = []
        if let snapshot { operations.append(.reset(snapshotIndex: snapshot.index, term: snapshot.term)) }
        if let truncateFrom { operations.append(.truncate(from: truncateFrom)) }
        if !entries.isEmpty { operations.append(.append(entries)) }
        if let hardState { operations.append(.saveHardState(hardState)) }
        guard !operations.isEmpty else {
            whenDurable?()
            return
        }
        _ = try await writer.submit(.batch(operations), whenDurable: whenDurable)
    }

    /// Durably replaces the hard state.
    public func saveHardState(_ state: HardState) async throws {
        _ = try await writer.submit(.saveHardState(state))
    }

    /// Removes the entries from `index` to the end (a follower's conflicting suffix).
    public func truncate(from index: UInt64) async throws {
        _ = try await writer.submit(.truncate(from: index))
    }

    /// Removes the entries up to and including `index`, remembering (`index`, `term`) as the
    /// snapshot the log now starts behind.
    public func compact(through index: UInt64, term: UInt64) async throws {
        _ = try await writer.submit(.compact(through: index, term: term))
    }

    /// Moves every journaled change into LMDB now (the writer does so by itself every
    /// ``checkpointInterval``).
    public func checkpoint() async throws {
        _ = try await writer.submit(.checkpoint)
    }

    // MARK: Keys

    static func key(_ index: UInt64) -> [UInt8] {
        withUnsafeBytes(of: index.bigEndian) { Array($0) }
    }

    /// The index an entries key names; a key of another size than 8 bytes is damage to data.mdb.
    static func index(fromKey key: MDB_val) throws -> UInt64 {
        guard key.mv_size == 8, let start = key.mv_data else {
            throw StoreError(.corruptEntry, "data.mdb is damaged: an entry's key is \(key.mv_size) bytes, not 8")
        }
        return UInt64(bigEndian: UnsafeRawBufferPointer(start: start, count: 8).loadUnaligned(as: UInt64.self))
    }

    /// What to do about a damaged log. A region's member must not go back to an older copy of its
    /// log (it may drop entries it acknowledged, or a vote it cast): it starts over, empty.
    public static let damagedLogAdvice =
        "On a region's member: empty its data directory, remove it and add it again (dwcp cluster remove-member, then serve --join and dwcp cluster add-member). On a single node: restore the data directory from a backup"

    static let hardStateKey = Array("hard_state".utf8)
    static let snapshotKey = Array("snapshot".utf8)
    static let journalSequenceKey = Array("journal_sequence".utf8)

    /// What LMDB holds, and the sequence of the last journal record it has taken in.
    private static func loadState(_ environment: LMDBEnvironment, _ entriesDatabase: MDB_dbi, _ metaDatabase: MDB_dbi)
        throws -> (State, UInt64)
    {
        try environment.read { txn in
            var b = State()
            if let frame = try environment.get(txn, metaDatabase, key: Self.hardStateKey) {
                b.hardState = try HardState(frame: frame)
            }
            if let snap = try environment.get(txn, metaDatabase, key: Self.snapshotKey) {
                guard snap.count == 16 else {
                    throw StoreError(
                        .corruptEntry, "the log's snapshot record is damaged (\(snap.count) bytes, not 16)")
                }
                snap.withUnsafeBytes { raw in
                    b.snapshotIndex = raw.loadLittleEndian(UInt64.self, at: 0)
                    b.snapshotTerm = raw.loadLittleEndian(UInt64.self, at: 8)
                }
                guard b.snapshotIndex <= LogEntry.largestPosition, b.snapshotTerm <= LogEntry.largestPosition else {
                    throw StoreError(
                        .corruptEntry,
                        "the log's snapshot record is damaged (index \(b.snapshotIndex), term \(b.snapshotTerm))")
                }
            }
            var sequence: UInt64 = 0
            if let bytes = try environment.get(txn, metaDatabase, key: Self.journalSequenceKey) {
                guard bytes.count == 8 else {
                    throw StoreError(
                        .corruptEntry, "the log's journal sequence record is damaged (\(bytes.count) bytes, not 8)")
                }
                sequence = bytes.withUnsafeBytes { $0.loadLittleEndian(UInt64.self, at: 0) }
                guard sequence < UInt64(Int64.max) else {
                    throw StoreError(.corruptEntry, "the log's journal sequence record is damaged (\(sequence))")
                }
            }
            b.firstIndex = b.snapshotIndex + 1
            b.lastIndex = b.snapshotIndex
            b.lastTerm = b.snapshotTerm
            var cursor: OpaquePointer?
            try LMDBEnvironment.check(mdb_cursor_open(txn, entriesDatabase, &cursor), "mdb_cursor_open")
            defer { mdb_cursor_close(cursor) }
            var key = MDB_val()
            var value = MDB_val()
            // Only MDB_NOTFOUND means an empty log; any other failure is damage to say, not to
            // take for a log that starts at the snapshot.
            let last = mdb_cursor_get(cursor, &key, &value, MDB_LAST)
            if last != MDB_NOTFOUND { try LMDBEnvironment.check(last, "reading the log's last entry in data.mdb") }
            if last == 0 {
                let index = try Self.index(fromKey: key)
                let entry = try LogEntry(index: index, frame: environment.pageBounds().bytes(of: value))
                b.lastIndex = index
                b.lastTerm = entry.term
            }
            let first = mdb_cursor_get(cursor, &key, &value, MDB_FIRST)
            if first != MDB_NOTFOUND { try LMDBEnvironment.check(first, "reading the log's first entry in data.mdb") }
            if first == 0 {
                b.firstIndex = try Self.index(fromKey: key)
                // Compaction deletes the entries through the snapshot and records it in one
                // transaction: the entries start right behind it, or something is lost.
                guard b.firstIndex == b.snapshotIndex + 1 else {
                    throw StoreError(
                        .corruptEntry,
                        "the log's first entry is \(b.firstIndex) but its snapshot record says \(b.snapshotIndex): entries or the snapshot record are lost",
                        index: b.firstIndex)
                }
            }
            return (b, sequence)
        }
    }
}
