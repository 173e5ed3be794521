import Foundation
import GRDB
import Logging
import Replication
import Store
import Synchronization

/// The node's snapshots of its views: `DATA/snapshots/views-INDEX.sqlite`, a copy of the views at
/// applied index INDEX. A replicated node takes one every so many entries and compacts its log
/// behind it; the leader streams the latest to a member too far behind for the log; a member
/// installs one it received into its live views.
///
/// A snapshot describes itself: its `dwcp_state` row holds the index, the term and the schema
/// version, and its `members` table the group's membership at that index.
public final class ViewSnapshots: Sendable {
    public let directory: String
    let views: ViewStore
    /// The node's applied index (an installed snapshot moves it).
    let applied: IndexWatermark
    let logger: Logger
    /// 1 once the views passed the check a node makes as it starts (``Node/checkViews()``): no
    /// snapshot is taken before, so damage found then is never copied into one (a rebuild would
    /// start from it).
    let viewsChecked = IndexWatermark(0)
    /// The snapshot being received, chunk by chunk.
    let incoming = Mutex<Incoming?>(nil)

    struct Incoming: Sendable {
        var from: String
        /// The term of the leader that sends it.
        var term: UInt64
        var index: UInt64
        var totalBytes: UInt64
        var checksum: UInt32
        var received: UInt64 = 0
        var runningChecksum: UInt32 = 0
        var descriptor: Int32
    }

    /// What a snapshot file says about itself.
    public struct Description: Sendable, Equatable {
        public var index: UInt64
        public var term: UInt64
        public var schemaVersion: String
        public var membership: MembershipRecord
    }

    init(directory: String, views: ViewStore, applied: IndexWatermark, logger: Logger) throws {
        self.directory = directory
        self.views = views
        self.applied = applied
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Leftovers of a transfer or a snapshot that a crash interrupted.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasPrefix("incoming-") || name.hasPrefix("taking-") || name.hasPrefix(ViewStore.upgradingPrefix) {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    func path(_ index: UInt64) -> String { directory + "/views-\(index).sqlite" }
    func receivedPath(_ index: UInt64) -> String { directory + "/received-\(index).sqlite" }

    /// The index of the newest snapshot kept here.
    public var latestIndex: UInt64? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> UInt64? in
            guard name.hasPrefix("views-"), name.hasSuffix(".sqlite") else { return nil }
            return UInt64(name.dropFirst("views-".count).dropLast(".sqlite".count))
        }.max()
    }

    /// Reads what a snapshot file says about itself.
    public static func describe(path: String) throws -> Description {
        try readOnly(path).read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT applied_index, applied_term, schema_version FROM dwcp_state WHERE id = 1")
            else { throw NodeError(.internal, "snapshot \(path) has no state row") }
            // (Read as optionals and checked: a damaged or foreign file must not trap.)
            func value<T: DatabaseValueConvertible>(_ row: Row, _ column: String) -> T? {
                T.fromDatabaseValue(row[column] as DatabaseValue)
            }
            guard let index = (value(row, "applied_index") as Int64?).flatMap(UInt64.init(exactly:)),
                let term = (value(row, "applied_term") as Int64?).flatMap(UInt64.init(exactly:)),
                let schemaVersion: String = value(row, "schema_version")
            else { throw NodeError(.invalid, "snapshot \(path) has no valid index, term and schema version") }
            var membership = MembershipRecord()
            for member in try Row.fetchAll(db, sql: "SELECT id, address, role FROM members") {
                guard let id: String = value(member, "id"), let address: String = value(member, "address"),
                    let role: String = value(member, "role")
                else { throw NodeError(.invalid, "snapshot \(path) has a member row without id, address or role") }
                if role == "voter" {
                    membership.voters[id] = address
                } else {
                    membership.learners[id] = address
                }
            }
            return Description(index: index, term: term, schemaVersion: schemaVersion, membership: membership)
        }
    }

    // MARK: - Taking

    /// Copies the views as they are into a new snapshot file; returns its index. The copy
    /// (``ViewStore/copy(to:)``) holds the live rows without the pages that deletes freed, and is
    /// taken while writers go on. With `replacing`, a file already at that index (found damaged)
    /// is replaced in one rename; without, it is kept.
    func take(replacing: Bool = false) async throws -> UInt64 {
        _ = try await viewsChecked.wait(until: 1)
        let taking = directory + "/taking-\(UUID().uuidString.prefix(8)).sqlite"
        let index = try await views.copy(to: taking)
        // Views damaged since the start check would be copied again at every retake: they are
        // damage to rebuild, not a snapshot to send.
        if let stray = try Self.strayValue(inFile: taking, index: index) {
            try? FileManager.default.removeItem(atPath: taking)
            throw ViewStore.markStray(viewsAt: views.path, stray)
        }
        if FileManager.default.fileExists(atPath: path(index)), !replacing {
            try FileManager.default.removeItem(atPath: taking)
        } else {
            // Nothing of the file replaced may be read with the new one.
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path(index) + suffix) }
            guard rename(taking, path(index)) == 0 else {
                let error = NodeError(
                    .internal, "cannot rename \(taking) to \(path(index)): \(String(cString: strerror(errno)))")
                try? FileManager.default.removeItem(atPath: taking)
                throw error
            }
            // The rename is on disk before the log is compacted behind the file.
            try ViewStore.syncFile(directory)
        }
        return index
    }

    /// Removes the snapshot files older than `durable`, the snapshot the log is compacted behind
    /// on disk, and received ones no newer than it (with any `-wal` or `-shm` file beside them).
    /// Newer files stay: one may be on its way to becoming the log's snapshot (a received one
    /// adopted while its reset is written, a copy about to be compacted behind); the first prune
    /// after the log passes them removes them.
    func prune(behind durable: UInt64) {
        func index(_ name: Substring, _ prefix: String) -> UInt64? {
            guard name.hasPrefix(prefix), name.hasSuffix(".sqlite") else { return nil }
            return UInt64(name.dropFirst(prefix.count).dropLast(".sqlite".count))
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var base = Substring(name)
            if base.hasSuffix("-wal") || base.hasSuffix("-shm") { base = base.dropLast(4) }
            let prunable =
                index(base, "views-").map { $0 < durable } ?? index(base, "received-").map { $0 <= durable } ?? false
            if prunable { try? FileManager.default.removeItem(atPath: directory + "/" + name) }
        }
    }

    // MARK: - Installing

    /// Makes a received snapshot this node's latest.
    func adoptReceived(_ index: UInt64) throws {
        if FileManager.default.fileExists(atPath: path(index)) {
            try FileManager.default.removeItem(atPath: path(index))
        }
        try FileManager.default.moveItem(atPath: receivedPath(index), toPath: path(index))
        // On disk before the log starts over behind it.
        try ViewStore.syncFile(directory)
    }

    /// Replaces the content of the live views with snapshot `index`, in one transaction (readers
    /// see the old state or the new, never a mix), and moves the applied index to it. A snapshot
    /// of an earlier dwcp is upgraded first, on GRDB's writer queue like the copy.
    func install(_ index: UInt64) async throws {
        let description = try await views.replaceContents { db in
            let (file, description) = try self.checked(index)
            try Self.copy(file, into: db)
            return description
        }
        applied.advance(to: description.index)
        logger.notice("installed views snapshot \(index) (term \(description.term))")
    }

    /// ``install(_:)`` for the node's start, before anything else runs. A file that is gone or
    /// that SQLite cannot read is said so with what to do (``NodeError/unusableSnapshot(_:_:memberID:)``;
    /// `memberID` is nil for a single node); other failures (an upgrade's, a full disk) as they are.
    func installAtStart(_ index: UInt64, memberID: String?) throws {
        let described: Description
        do {
            described = try describe(index)
        } catch {
            throw NodeError.unusableSnapshot(index, error, memberID: memberID)
        }
        let (file, description) = try upgraded(index, described)
        let stray: String?
        do {
            stray = try Self.strayValue(inFile: file, index: description.index)
        } catch {
            throw NodeError.unusableSnapshot(index, error, memberID: memberID)
        }
        if let stray { throw NodeError.unusableSnapshot(index, NodeError(.invalid, stray), memberID: memberID) }
        do {
            try views.pool.writeWithoutTransaction { db in try Self.copy(file, into: db) }
        } catch {
            throw NodeError(.unavailable, "\(file) cannot be copied into the views: \(error)", cause: error)
        }
        applied.advance(to: description.index)
        logger.notice("restored the views from snapshot \(index) (term \(description.term))")
    }

    /// What snapshot `index` kept here says about itself; an error naming the file if it is gone
    /// or SQLite cannot read it.
    func describe(_ index: UInt64) throws -> Description {
        let file = try existingPath(index)
        do {
            return try Self.describe(path: file)
        } catch let error as DatabaseError {
            throw NodeError(.unavailable, "\(file) is not a views snapshot SQLite can read: \(error)", cause: error)
        }
    }

    /// Whether snapshot `index`, the one a compacted log starts behind, is gone (said, at warning
    /// level): the views, caught up past it as the node started, hold what it did, and the node
    /// takes a new one from them at once (after the start's check), as until then views lost or
    /// damaged could not be rebuilt. False for a log never compacted.
    func missingBehindLog(_ index: UInt64) -> Bool {
        guard index > 0, !FileManager.default.fileExists(atPath: path(index)) else { return false }
        logger.warning(
            "views snapshot \(index), which the log starts behind, is missing (\(path(index))): the views hold what it did, so a new snapshot is taken from them now, once they pass the start's check (until then, views lost or damaged could not be rebuilt)"
        )
        return true
    }

    /// Snapshot `index`'s file; an error naming it if it is gone.
    func existingPath(_ index: UInt64) throws -> String {
        guard FileManager.default.fileExists(atPath: path(index)) else {
            throw NodeError(.unavailable, "views snapshot \(index) is missing (\(path(index)))")
        }
        return path(index)
    }

    /// Snapshot `index`'s file and what it says about itself, upgraded in place first when an
    /// earlier dwcp wrote it (a snapshot kept from before this node's upgrade, or one a member
    /// not yet upgraded sent). One of a newer dwcp cannot be installed.
    private func checked(_ index: UInt64) throws -> (String, Description) {
        try upgraded(index, describe(index))
    }

    /// ``checked(_:)`` for snapshot `index`, which says `description` of itself.
    private func upgraded(_ index: UInt64, _ description: Description) throws -> (String, Description) {
        let file = path(index)
        guard description.schemaVersion != ViewStore.schemaVersion else { return (file, description) }
        do {
            if let note = try ViewStore.upgradeFile(at: file) { logger.notice("\(note)") }
        } catch let error as StoreError {
            throw NodeError(.unavailable, "views snapshot \(index) cannot be installed: \(error)", cause: error)
        }
        return (file, try Self.describe(path: file))
    }

    private static func copy(_ file: String, into db: Database) throws {
        try db.execute(sql: "ATTACH DATABASE ? AS snapshot", arguments: [file])
        defer { try? db.execute(sql: "DETACH DATABASE snapshot") }
        try db.inTransaction {
            let tables = try String.fetchAll(
                db, sql: "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            for table in tables {
                try db.execute(sql: "DELETE FROM main.\"\(table)\"")
                try db.execute(sql: "INSERT INTO main.\"\(table)\" SELECT * FROM snapshot.\"\(table)\"")
            }
            return .commit
        }
    }
}
