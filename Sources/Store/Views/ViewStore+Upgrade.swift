import Foundation
import GRDB
import Schema

extension ViewStore {
    /// Applies `files` (the schema files views of an earlier version lack) and records this
    /// build's schema version, in `db`'s transaction.
    static func upgrade(_ db: Database, applying files: ArraySlice<Schema.File>) throws {
        for file in files { try db.execute(sql: file.sql) }
        try db.execute(sql: "UPDATE dwcp_state SET schema_version = ? WHERE id = 1", arguments: [Schema.version])
    }

    /// One line for the log: what an upgrade of `what` applied.
    static func describeUpgrade(of what: String, from version: String, applied files: ArraySlice<Schema.File>)
        -> String
    {
        "\(what) upgraded from schema version \(version) to \(Schema.version): applied "
            + files.map(\.name).joined(separator: ", ")
    }

    /// Whether views of schema `version` are this build's or of an earlier one it upgrades.
    public static func installs(schemaVersion version: String) -> Bool { Schema.filesToUpgrade(from: version) != nil }

    /// The name prefix of the copy ``upgradeFile(at:)`` works on, beside the file; a crash can
    /// leave one behind, for the directory's owner to remove.
    public static let upgradingPrefix = "upgrading-"

    /// Brings a views file that nothing else writes (a snapshot) up to this build's schema. The
    /// upgrade is made on a copy, which is synced and then renamed over the file: a crash leaves
    /// either the old file or the new one, never a mix, and the file never has a WAL of its own
    /// (a snapshot is streamed to other members as this one file). Returns what it did (nil when
    /// the file was of this build's schema already). Throws, naming both versions, when the file
    /// is of a schema this build cannot upgrade.
    public static func upgradeFile(at path: String) throws -> String? {
        let version: String
        switch storedSchemaVersion(path: path) {
        case .success(let stored): version = stored
        case .failure(let error): throw StoreError(.views, "\(path) is unreadable", cause: error)
        }
        guard let files = Schema.filesToUpgrade(from: version) else {
            let tooOld = (1..<Schema.oldestUpgradableCount).contains { Schema.version(ofFirst: $0) == version }
            throw StoreError(
                .unsupportedVersion,
                "\(path) has views schema version \(version), which this dwcp (\(Schema.version)) cannot upgrade: "
                    + (tooOld
                        ? "it was written by a dwcp older than any this one upgrades from; give this member an empty data directory and add it to the region again"
                        : "it was written by a newer dwcp, or by one whose schema files differ; run the region's newest dwcp on this member")
            )
        }
        if files.isEmpty { return nil }
        let name = (path as NSString).lastPathComponent
        let directory = (path as NSString).deletingLastPathComponent
        let copy = directory + "/" + upgradingPrefix + name
        removeFiles(at: copy)
        do {
            var readOnly = Configuration()
            readOnly.readonly = true
            let source = try DatabaseQueue(path: path, configuration: readOnly)
            let destination = try DatabaseQueue(path: copy)
            try source.backup(to: destination)
            try source.close()
            // The backup carries the source's WAL mode; the copy commits into its own file instead.
            try destination.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try destination.write { db in try upgrade(db, applying: files) }
            try destination.close()
            try syncFile(copy)
            guard rename(copy, path) == 0 else {
                throw StoreError(.views, "cannot rename \(copy) to \(path): errno \(errno)")
            }
            // Readers of the old file (read-only connections cannot remove them) may have left its
            // empty WAL and its shared-memory index: neither belongs with the new file, which is
            // not in WAL mode and ignores them meanwhile.
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try syncFile(directory)
        } catch {
            removeFiles(at: copy)
            throw StoreError(.views, "cannot upgrade \(path)", cause: error)
        }
        return describeUpgrade(of: name, from: version, applied: files)
    }

    /// Flushes a file, or a directory's entries, to the disk.
    public static func syncFile(_ path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw StoreError(.views, "cannot open \(path) to sync it: errno \(errno)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw StoreError(.views, "fsync of \(path) failed: errno \(errno)") }
    }
}
