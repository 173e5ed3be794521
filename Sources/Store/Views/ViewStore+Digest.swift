import Crypto
import GRDB

/// One table of the views, hashed: members whose views hold the same rows at the same log index
/// have equal digests, table by table (`dwcp cluster verify`).
public struct TableDigest: Sendable, Equatable {
    public var table: String
    public var rows: Int
    /// SHA-256 of the table's rows in ``ViewStore/dump()``'s canonical form, in hex.
    public var sha256: String

    public init(table: String, rows: Int, sha256: String) {
        self.table = table
        self.rows = rows
        self.sha256 = sha256
    }
}

extension ViewStore {
    /// A read-only view of the views as they are at this instant, which later commits do not
    /// change: a digest taken from it is the digest of the index just applied, however long it takes.
    /// It opens a connection of its own (about a millisecond); close it by letting it go.
    public func openSnapshot() throws -> DatabaseSnapshot {
        try markingDamage { try pool.makeSnapshot() }
    }

    /// The digest of every table in `db` and the applied index it is of (`dwcp_state`).
    /// SQLite keeps no checksum of a row's values, so views damaged without breaking an index pass
    /// ``checkIntegrity()``: comparing these digests across members at one index finds them.
    public static func digest(_ db: Database) throws -> (appliedIndex: UInt64, tables: [TableDigest]) {
        let applied = try UInt64.fetchOne(db, sql: "SELECT applied_index FROM dwcp_state") ?? 0
        var tables: [TableDigest] = []
        var hash = SHA256()
        var rows = 0
        func finish() {
            guard let last = tables.popLast() else { return }
            let hex = hash.finalize().map { String(format: "%02x", $0) }.joined()
            tables.append(TableDigest(table: last.table, rows: rows, sha256: hex))
        }
        try forEachRow(
            db,
            table: { name in
                finish()
                tables.append(TableDigest(table: name, rows: 0, sha256: ""))
                hash = SHA256()
                rows = 0
            },
            row: { line in
                hash.update(data: Array((line + "\n").utf8))
                rows += 1
            })
        finish()
        return (applied, tables)
    }
}
