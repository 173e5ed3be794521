import Crypto
import GRDB

/// One table of the views, hashed: members whose views hold the same rows at the same log index
/// have equal digests, table by table (`dwcp cluster verify`).
public struct TableDigest: Sendable, Equatable {
    public var table: String
    public var rows: Int
    /// SHA-256 of the table's rows in ``ViewStore/dump()``'s order, each value as its type and
    /// its bytes, in hex.
    public var sha256: String

    public init(table: String, rows: Int, sha256: String) {
        self.table = table
        self.rows = rows
        self.sha256 = sha256
    }
}

extension TableDigest {
    /// As `GET /v1/views/digest` and `dwcp cluster verify --json` write it: `{"table", "rows", "sha256"}`.
    public var json: JSONValue {
        .object([("table", .string(table)), ("rows", .int(Int64(rows))), ("sha256", .string(sha256))])
    }

    /// One table as ``json`` writes it; nil when `json` is not one.
    public init?(json: JSONValue) {
        guard let name = json["table"]?.stringValue, case .int(let rows)? = json["rows"],
            let sha256 = json["sha256"]?.stringValue
        else { return nil }
        self.init(table: name, rows: Int(clamping: rows), sha256: sha256)
    }
}

/// The views hashed at one applied index: what `GET /v1/views/digest` answers.
public struct ViewsDigest: Sendable, Equatable {
    public var appliedIndex: UInt64
    /// The views' schema version: views of two versions have other tables or columns, and their
    /// digests cannot be compared.
    public var schemaVersion: String
    public var tables: [TableDigest]
}

extension ViewStore {
    /// A read-only view of the views as they are at this instant, which later commits do not
    /// change (GRDB begins its read transaction as it opens it): a digest taken from it is the
    /// digest of the index just applied, however long it takes. It opens a connection of its own
    /// (about a millisecond), closed when the snapshot is released.
    public func openSnapshot() throws -> DatabaseSnapshot {
        try markingDamage { try pool.makeSnapshot() }
    }

    /// The digest of every table of `snapshot`, read on its own queue (off the caller's thread);
    /// damage met on the way is marked, as for any read. SQLite keeps no checksum of a row's
    /// values, so views damaged without breaking an index pass ``checkIntegrity()``: comparing
    /// these digests across members at one index finds them.
    public func digest(of snapshot: DatabaseSnapshot) async throws -> ViewsDigest {
        try await markingDamage { try await snapshot.read { db in try Self.digest(db) } }
    }

    static func digest(_ db: Database) throws -> ViewsDigest {
        let state = try Row.fetchOne(db, sql: "SELECT applied_index, schema_version FROM dwcp_state")
        var tables: [TableDigest] = []
        var bytes: [UInt8] = []
        for (name, columns) in try canonicalTables(db) {
            var hash = SHA256()
            var rows = 0
            let cursor = try Row.fetchCursor(db, sql: canonicalSelect(name, columns: columns))
            while let row = try cursor.next() {
                // Each value as its type and its bytes: unambiguous, and no text to build per row.
                bytes.removeAll(keepingCapacity: true)
                for value in row.databaseValues { Self.append(value, to: &bytes) }
                hash.update(data: bytes)
                rows += 1
            }
            tables.append(TableDigest(table: name, rows: rows, sha256: hexadecimal(hash.finalize())))
        }
        return ViewsDigest(
            appliedIndex: state?["applied_index"] ?? 0, schemaVersion: state?["schema_version"] ?? "", tables: tables)
    }

    private static func append(_ value: DatabaseValue, to bytes: inout [UInt8]) {
        func append<T: FixedWidthInteger>(_ integer: T) {
            withUnsafeBytes(of: integer.littleEndian) { bytes.append(contentsOf: $0) }
        }
        switch value.storage {
        case .null: bytes.append(0)
        case .int64(let i):
            bytes.append(1)
            append(i)
        case .double(let d):
            bytes.append(2)
            append(d.bitPattern)
        case .string(let text):
            bytes.append(3)
            append(UInt32(text.utf8.count))
            bytes.append(contentsOf: text.utf8)
        case .blob(let data):
            bytes.append(4)
            append(UInt32(data.count))
            bytes.append(contentsOf: data)
        }
    }
}
