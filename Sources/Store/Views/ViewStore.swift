import Foundation
import GRDB
import Schema
import Synchronization

/// The SQLite views of the fleet (`DATA/views.sqlite`), materialized from the log by applying
/// committed entries in index order.
///
/// The applied index lives in `dwcp_state`, written in the same transaction as the changes of the
/// entries it covers: after a crash the views are exactly those of some applied index, and
/// applying resumes right after it. A file built by an earlier dwcp is upgraded in place: the
/// schema files it lacks are applied to it (``upgradeNote`` says which). A file that is missing,
/// unreadable or of a schema this build cannot upgrade is replaced by an empty one at index 0,
/// which the caller then fills from the log.
public final class ViewStore: Sendable {
    public let path: String
    /// The connection pool: one writer (the applier), concurrent readers. Its async reads hop
    /// threads three times (GRDB's pool queue, the reader's queue, back); use it for reads that
    /// may take long. Short lookups go through ``read(_:)``.
    public let pool: DatabasePool
    /// Read-only connections used only synchronously, by ``read(_:)``.
    let lookups: LookupConnections
    /// True while ``replaceContents(_:)`` holds the writer (see ``applyUnlessReplacing(_:answering:)``).
    private let replacing = Mutex(false)
    /// A connection of its own for WAL checkpoints: a passive checkpoint takes no writer lock,
    /// so it runs beside the applier instead of in its queue.
    private let checkpointer: DatabaseQueue
    /// Why the file was created afresh when it was (missing, a schema version it cannot upgrade,
    /// unreadable); nil otherwise.
    public let rebuildReason: String?
    /// What the upgrade of a file built by an earlier dwcp did, when there was one; nil otherwise.
    public let upgradeNote: String?
    /// Where the file a rebuild replaced was moved (`views.sqlite.replaced-TIME`), nil when none
    /// was: kept, not removed, since a rebuild can fail (a snapshot missing behind a compacted log,
    /// a record this dwcp cannot read) and then those views hold all that is left of what the log
    /// dropped. A node removes such files once a start has applied to the new views all that it
    /// knows committed (``replacedFiles(of:)``). Until then the disk holds both files.
    public let replacedPath: String?

    public init(path: String) throws {
        self.path = path
        var reason: String?
        var upgrade: (from: String, files: ArraySlice<Schema.File>)?
        let marker = Self.damageMarker(for: path)
        if FileManager.default.fileExists(atPath: marker) {
            reason = "views.sqlite was found damaged (\(Self.damageRecorded(for: path) ?? "why was not kept"))"
        } else if !FileManager.default.fileExists(atPath: path) {
            reason = "views.sqlite is missing"
        } else {
            switch Self.storedSchemaVersion(path: path) {
            case .success(let version):
                if let files = Schema.filesToUpgrade(from: version) {
                    if !files.isEmpty { upgrade = (version, files) }
                } else {
                    reason =
                        "views.sqlite has schema version \(version), which this dwcp (\(Schema.version)) cannot upgrade"
                }
            case .failure(let error):
                reason = "views.sqlite is unreadable (\(error))"
            }
        }
        replacedPath = reason == nil ? nil : try Self.setAside(path)
        var configuration = Configuration()
        configuration.label = "views"
        configuration.busyMode = .timeout(10)
        // The views are derived from the log, which is synced: a commit here need not fsync. After
        // a crash they may be a few entries behind (the applied index commits with them, so never
        // torn), and the node applies those entries again from the log when it starts. No commit
        // checkpoints the WAL either (that syncs): ``checkpoint()`` does, off the apply path, so
        // a small batch applies without any disk wait.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        rebuildReason = reason
        if reason != nil {
            try pool.write { db in
                for file in Schema.files { try db.execute(sql: file.sql) }
                try db.execute(
                    sql: "INSERT INTO dwcp_state (id, applied_index, applied_term, schema_version) VALUES (1, 0, 0, ?)",
                    arguments: [Schema.version])
            }
            // (Only once the new file is made: a crash before this rebuilds again.)
            try? FileManager.default.removeItem(atPath: marker)
        }
        if let upgrade {
            try pool.write { db in try Self.upgrade(db, applying: upgrade.files) }
            upgradeNote = Self.describeUpgrade(of: "views.sqlite", from: upgrade.from, applied: upgrade.files)
        } else {
            upgradeNote = nil
        }
        lookups = LookupConnections(path: path)
        var checkpointConfiguration = Configuration()
        checkpointConfiguration.label = "views-checkpointer"
        checkpointConfiguration.prepareDatabase { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        checkpointer = try DatabaseQueue(path: path, configuration: checkpointConfiguration)
    }

    /// Runs a short read (indexed lookups, a few rows) on the caller's thread. Each statement sees
    /// every commit made before it ran; the statements of one call are not one snapshot (no
    /// BEGIN/COMMIT around them: two statements less per lookup on the intent path), so use it
    /// for lookups that need no consistency between statements.
    ///
    /// This is the read of the intent path: it costs no thread hop, where an async `pool.read`
    /// costs three (about 0.3 ms each time on a loaded 2-core machine). It never waits for another
    /// lookup (``LookupConnections`` opens one more connection when all are lent), but it holds
    /// the caller's thread for its SQLite work: never use it for a read that scans a table. The
    /// connections are separate from `pool`'s, whose async readers give their connection back
    /// only when their task runs again: a synchronous read waiting on that pool can hold up the
    /// very thread the task needs (`dwcp serve` runs every task on two event loops).
    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try markingDamage { try lookups.read(body) }
    }

    static func storedSchemaVersion(path: String) -> Result<String, any Error> {
        Result {
            var configuration = Configuration()
            configuration.readonly = true
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in
                // (Said as it is stored when it is no text: a damaged or hand-edited file.)
                switch try DatabaseValue.fetchOne(db, sql: "SELECT schema_version FROM dwcp_state WHERE id = 1")?
                    .storage
                {
                case .string(let version): version
                case .int64(let number): "the integer \(number)"
                case .double(let number): "the number \(number)"
                case .blob(let bytes): "a blob of \(bytes.count) bytes"
                case .null, nil: "none"
                }
            }
        }
    }

    /// Moves the file at `path` (with its WAL, shared-memory index and journal) to
    /// `PATH.replaced-TIME`; returns that path, or nil when there was no file to move. Leftovers
    /// without a file (a WAL, say) are removed: they belong to no database.
    static func setAside(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else {
            removeFiles(at: path)
            return nil
        }
        let time = ISO8601DateFormatter.string(
            from: Date(), timeZone: .gmt, formatOptions: [.withYear, .withMonth, .withDay, .withTime])
        var aside = "\(path).replaced-\(time)"
        // (Two rebuilds in one second: the first one's file is kept too.)
        var count = 1
        while FileManager.default.fileExists(atPath: aside) {
            count += 1
            aside = "\(path).replaced-\(time)-\(count)"
        }
        for suffix in [""] + companionSuffixes where FileManager.default.fileExists(atPath: path + suffix) {
            do {
                try FileManager.default.moveItem(atPath: path + suffix, toPath: aside + suffix)
            } catch {
                throw StoreError(.views, "cannot move \(path + suffix) aside to rebuild the views", cause: error)
            }
        }
        return aside
    }

    /// The files rebuilds of the views at `path` moved aside (``replacedPath``) that are still
    /// there, oldest first.
    public static func replacedFiles(of path: String) -> [String] {
        let directory = (path as NSString).deletingLastPathComponent
        let prefix = (path as NSString).lastPathComponent + ".replaced-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { name in
            name.hasPrefix(prefix) && !companionSuffixes.contains { name.hasSuffix($0) }
        }.sorted().map { directory + "/" + $0 }
    }

    /// The files SQLite keeps beside a database at PATH: PATH-wal, PATH-shm, PATH-journal.
    static let companionSuffixes = ["-wal", "-shm", "-journal"]

    /// Removes the database at `path` with its WAL, shared-memory index and journal.
    public static func removeFiles(at path: String) {
        for suffix in [""] + companionSuffixes { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// The index of the last entry applied to the views.
    /// One that is no log index is damage: marked, so that the next start rebuilds the views.
    public func appliedIndex() throws -> UInt64 {
        do {
            return try pool.read { db in try Self.appliedIndex(db) }
        } catch let error as StoreError where error.code == .views {
            throw Self.markStray(viewsAt: path, error.message)
        }
    }

    /// The schema version of the views this build defines (`schema/*.sql`).
    public static var schemaVersion: String { Schema.version }

    /// The applied index, read in `db`'s transaction.
    public static func appliedIndex(_ db: Database) throws -> UInt64 {
        // (SQLite reads text as 0: the type is checked, or such views would be applied again from 1.)
        let row = try Row.fetchOne(
            db.cachedStatement(
                sql: "SELECT applied_index, typeof(applied_index) = 'integer' AS integer FROM dwcp_state WHERE id = 1"))
        guard let row else { return 0 }
        let stored = row[0] as DatabaseValue
        guard row[1] as Bool? == true, let value = Int64.fromDatabaseValue(stored) else {
            throw StoreError(.views, "the views' applied_index \(stored) is no log index")
        }
        return try logIndex(value, "applied_index")
    }

    /// Applies `entries` (in index order) in one transaction, skipping those already applied.
    /// Returns the new applied index. If an entry cannot be read, the entries before it are
    /// applied and committed, then the error (naming the entry's index) is thrown.
    @discardableResult
    public func apply(_ entries: [LogEntry]) throws -> UInt64 {
        try apply(entries, answering: [:]).index
    }

    /// ``apply(_:)`` that also reads the answer (``IntentAnswer``) of each intent `wanted` asks for,
    /// in the same transaction, right after the intent applied: the member answers its client
    /// without a read of its own. Answers come only for the intents this batch applied, and only
    /// where the entry carries the payload asked about.
    public func apply(_ entries: [LogEntry], answering wanted: [UInt64: IntentAnswer.Request]) throws -> (
        index: UInt64, answers: [UInt64: IntentAnswer]
    ) {
        try markingDamage {
            let batch = try pool.writeWithoutTransaction { db in try Self.apply(entries, wanted, db) }
            return (try batch.appliedIndexOrFailure(), batch.answers)
        }
    }

    /// The applier's transaction over `entries`, on the writer's connection `db`.
    private static func apply(
        _ entries: [LogEntry], _ wanted: [UInt64: IntentAnswer.Request], _ db: Database
    ) throws -> ViewApplier.BatchOutcome {
        try inTransaction(db) { try ViewApplier.apply(entries, answering: wanted, db: db) }
    }

    /// Runs `body` in one immediate write transaction whose BEGIN and COMMIT statements are
    /// prepared once per connection: GRDB's `write` prepares both anew on every call, about 20 µs
    /// of a one-entry apply on every member. A failure rolls the transaction back with GRDB's own
    /// `rollback()`, which also survives an interrupted ROLLBACK (a cancelled async apply): a
    /// transaction left open would stop the process. `body` must let every SQLite error through
    /// (the applier does): after one, SQLite may have rolled back already.
    private static func inTransaction<T>(_ db: Database, _ body: () throws -> T) throws -> T {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        do {
            let result = try body()
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
            return result
        } catch {
            try? db.rollback()
            throw error
        }
    }

    /// ``apply(_:answering:)`` on the caller's thread, unless ``replaceContents(_:)`` holds the
    /// writer: then nil, and nothing is applied (apply the entries with the async
    /// ``apply(_:answering:)`` instead, on
    /// GRDB's writer queue). A synchronous write would wait for the whole replacement on the
    /// caller's thread. The check and the write happen under one lock that a replacement takes
    /// before it starts, so neither slips in behind the other.
    public func applyUnlessReplacing(_ entries: [LogEntry], answering wanted: [UInt64: IntentAnswer.Request]) throws
        -> (
            index: UInt64, answers: [UInt64: IntentAnswer]
        )?
    {
        try replacing.withLock { replacing in replacing ? nil : try apply(entries, answering: wanted) }
    }

    /// Runs `body` on GRDB's writer queue, without a transaction around it, for a write that holds
    /// the writer for long (every row replaced from a snapshot); ``applyUnlessReplacing(_:answering:)`` does
    /// not wait for it meanwhile.
    public func replaceContents<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        replacing.withLock { $0 = true }
        defer { replacing.withLock { $0 = false } }
        return try await pool.writeWithoutTransaction(body)
    }

    /// Copies what the WAL holds into the database file and syncs it (a passive checkpoint: it
    /// waits for neither readers nor the writer). Commits never do this themselves; the node calls
    /// it every ``checkpointEvery`` applied entries, on a connection of its own, so applying goes
    /// on meanwhile (on the writer's queue the checkpoint's copy and fsync held up every intent
    /// behind it; BENCHMARKS.md, bench/region).
    public func checkpoint() async throws {
        try await markingDamage {
            try await checkpointer.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) }
        }
    }

    /// ``checkpoint()`` on the caller's thread (start-up and shutdown, where nothing awaits).
    public func checkpointNow() throws {
        try markingDamage { try checkpointer.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) } }
    }

    /// How many applied entries the node lets the WAL gather before it checkpoints. A checkpoint's
    /// fsync flushes the disk's cache, so the log's fsyncs queue behind whatever it wrote: small,
    /// frequent checkpoints keep those waits short (measured against 100, 1,000 and 10,000:
    /// BENCHMARKS.md, bench/region, item 12).
    public static let checkpointEvery: UInt64 = 250

    /// Async form of ``apply(_:)``: the transaction runs on GRDB's writer queue, not the caller's thread.
    @discardableResult
    public func apply(_ entries: [LogEntry]) async throws -> UInt64 {
        try await apply(entries, answering: [:]).index
    }

    /// Async form of ``apply(_:answering:)``.
    public func apply(_ entries: [LogEntry], answering wanted: [UInt64: IntentAnswer.Request]) async throws -> (
        index: UInt64, answers: [UInt64: IntentAnswer]
    ) {
        try await markingDamage {
            let batch = try await pool.writeWithoutTransaction { db in try Self.apply(entries, wanted, db) }
            return (try batch.appliedIndexOrFailure(), batch.answers)
        }
    }

    /// Every row of every table, in a stable order, one JSON line per row: two view files hold the
    /// same state exactly when their dumps are equal.
    public func dump() throws -> String {
        try pool.read { db in
            var out = ""
            for (name, columns) in try Self.canonicalTables(db) {
                out += "# \(name)\n"
                let rows = try Row.fetchCursor(db, sql: Self.canonicalSelect(name, columns: columns))
                while let row = try rows.next() {
                    out +=
                        JSONValue.object(zip(columns, row.databaseValues).map { ($0, JSONValue(databaseValue: $1)) })
                        .serialized() + "\n"
                }
            }
            return out
        }
    }

    /// Every table of the views, in name order, with its columns.
    static func canonicalTables(_ db: Database) throws -> [(name: String, columns: [String])] {
        let tables = try String.fetchAll(
            db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        return try tables.map { ($0, try db.columns(in: $0).map(\.name)) }
    }

    /// A table's rows in one order whatever the file's layout: by every column in turn.
    static func canonicalSelect(_ table: String, columns: [String]) -> String {
        "SELECT * FROM \(table) ORDER BY \((1...columns.count).map(String.init).joined(separator: ", "))"
    }
}

extension JSONValue {
    /// The JSON form of an SQLite value: integers and reals as numbers, text as strings, blobs as hex strings.
    public init(databaseValue: DatabaseValue) {
        switch databaseValue.storage {
        case .null: self = .null
        case .int64(let i): self = .int(i)
        case .double(let d): self.init(real: d)
        case .string(let s): self = .string(s)
        case .blob(let data): self.init(blob: data)
        }
    }

    /// An SQLite blob: its bytes as lowercase hexadecimal.
    public init(blob bytes: some Sequence<UInt8>) {
        self = .string(hexadecimal(bytes))
    }

    /// An SQLite real: a number, or, for an infinite one, which JSON has no number for, the string
    /// "Infinity" or "-Infinity" (it came back as null). (SQLite stores no NaN: it is NULL there.)
    public init(real: Double) {
        self = real.isFinite ? .double(real) : .string(real.isNaN ? "NaN" : real > 0 ? "Infinity" : "-Infinity")
    }
}

/// `bytes` as lowercase hexadecimal, two digits a byte.
func hexadecimal(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
