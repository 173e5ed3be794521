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
    static func upgradeNote(_ what: String, from version: String, applied files: ArraySlice<Schema.File>) -> String {
        "\(what) upgraded from schema version \(version) to \(Schema.version): applied "
            + files.map(\.name).joined(separator: ", ")
    }

    /// Brings a views file that nothing else has open (a snapshot) up to this build's schema, in
    /// place and in one transaction, and syncs it. Returns what it did (nil when the file was of
    /// this build's schema already). Throws, naming both versions, when the file is of a schema
    /// this build cannot upgrade: a newer dwcp's, or one older than ``Schema/oldestUpgradableCount``.
    public static func upgradeFile(at path: String) throws -> String? {
        let version: String
        switch storedSchemaVersion(path: path) {
        case .success(let stored): version = stored
        case .failure(let error):
            throw StoreError(.views, "\(path) is unreadable", cause: error)
        }
        guard let files = Schema.filesToUpgrade(from: version) else {
            throw StoreError(
                .unsupportedVersion,
                "\(path) has views schema version \(version), which this dwcp (\(Schema.version)) cannot upgrade: it was written by a newer dwcp, or by one too old to upgrade from"
            )
        }
        if files.isEmpty { return nil }
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try upgrade(db, applying: files) }
        try queue.close()
        // Closing the last connection folds the WAL into the file; sync the file itself.
        let descriptor = open(path, O_RDONLY)
        defer { if descriptor >= 0 { close(descriptor) } }
        guard descriptor >= 0, fsync(descriptor) == 0 else {
            throw StoreError(.views, "cannot sync \(path) after upgrading it: errno \(errno)")
        }
        return upgradeNote((path as NSString).lastPathComponent, from: version, applied: files)
    }
}
