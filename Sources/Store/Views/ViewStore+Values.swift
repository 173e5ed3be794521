import GRDB

/// Checks the values of views: of the type their column declares, and within what the applier
/// ever writes.
///
/// SQLite lets any value into any column of a table that is not STRICT, and neither `quick_check`
/// nor `integrity_check` looks at values. The node reads its views as the applier wrote them (an
/// INTEGER column as an integer, an index as an unsigned log position); views edited by hand or
/// damaged on the disk, or a snapshot damaged on its way or made up and sent to a plain-TCP
/// replication port, with text in an INTEGER column or a negative index, would stop the process
/// at the first read of that row. A received snapshot with such a value is refused; views with one
/// are damage (``checkIntegrity()``), rebuilt from the log at the next start.
extension ViewStore {
    /// The largest value of any INTEGER column: far above any count, size or time the applier
    /// writes (memory at most 2^50 bytes, times in milliseconds since 1970), and low enough that a
    /// sum of up to 1,024 of them does not overflow.
    static let largestColumnValue: Int64 = 1 << 53

    /// The first value in the views of `db` (applied through `index`) that the applier would not
    /// have written, in words; nil when there is none.
    public static func strayValue(in db: Database, index: UInt64) throws -> String? {
        let tables = try String.fetchAll(
            db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        for table in tables {
            let columns = try Row.fetchAll(
                db, sql: "SELECT name, type, \"notnull\" FROM pragma_table_info(?)", arguments: [table])
            var conditions: [String] = []
            for column in columns {
                guard let name = String.fromDatabaseValue(column["name"]),
                    let declared = String.fromDatabaseValue(column["type"])?.uppercased()
                else { continue }
                let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                let nullable = (Int64.fromDatabaseValue(column["notnull"]) ?? 0) == 0
                let types: [String]
                if declared.contains("INT") {
                    types = ["integer"]
                } else if declared.contains("TEXT") || declared.contains("CHAR") {
                    types = ["text"]
                } else if declared.contains("BLOB") {
                    types = ["blob"]
                } else {
                    continue
                }
                let allowed = (types + (nullable ? ["null"] : [])).map { "'\($0)'" }.joined(separator: ",")
                conditions.append("typeof(\(quoted)) NOT IN (\(allowed))")
                if declared.contains("INT") {
                    // A log index is at most the snapshot's; a term may be any (`Raft.largestTerm`).
                    let upper =
                        name.hasSuffix("_index")
                        ? Int64(clamping: index) : name.hasSuffix("_term") ? Int64.max : largestColumnValue
                    conditions.append("(\(quoted) IS NOT NULL AND (\(quoted) < 0 OR \(quoted) > \(upper)))")
                }
            }
            guard !conditions.isEmpty else { continue }
            let quotedTable = "\"" + table.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            let sql = "SELECT * FROM \(quotedTable) WHERE \(conditions.joined(separator: " OR ")) LIMIT 1"
            if let row = try Row.fetchOne(db, sql: sql) {
                return "table \(table) holds a value the views never hold (\(Self.shown(row)))"
            }
        }
        return nil
    }

    /// A log index the views hold, read from `column`; damage (an error, not a trap) when it is
    /// negative. The node checks every value as it starts (``strayValue(in:index:)``), but serves
    /// its API meanwhile.
    public static func logIndex(_ stored: Int64, _ column: String) throws -> UInt64 {
        guard let index = UInt64(exactly: stored) else {
            throw StoreError(.views, "the views' \(column) \(stored) is no log index")
        }
        return index
    }

    /// Marks the views at `path` damaged for holding `stray` (``strayValue(in:index:)``'s words),
    /// so that the next start rebuilds them, and returns the error that says so.
    public static func markStray(viewsAt path: String, _ stray: String) -> StoreError {
        markDamaged(viewsAt: path, IntegrityProblems(text: stray))
    }

    /// A row in words, its values shortened.
    private static func shown(_ row: Row) -> String {
        row.columnNames.prefix(12).map { name in
            let value = "\(row[name] as DatabaseValue)"
            return "\(name) \(value.count > 40 ? String(value.prefix(40)) + "…" : value)"
        }.joined(separator: ", ")
    }
}
