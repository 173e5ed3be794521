import GRDB
import Schema

extension ViewStore {
    /// The most rows of each history table one `history.compacted` record removes, so that its
    /// apply stays short (BENCHMARKS.md, bench/store, "History compaction").
    public static let historyRowsPerCompaction = 10_000

    /// The index to compact before, or nil when no history row is older than `cutoff` (ms since
    /// the epoch). Rows come in log order, which is time order, so the old rows of each timed
    /// table (`intents`, `vm_events`, `vm_starts`) are a prefix. Each table bounds the boundary
    /// at its first row at or after the cutoff, or, when its first `limit` rows are all older, at
    /// the row after them; a table whose rows are all older bounds nothing. Placements carry no
    /// time: they follow the others' boundary.
    public static func historyCompactionBoundary(olderThan cutoff: Int64, limit: Int, _ db: Database) throws -> Int64? {
        let tables = [("intents", "submitted_at"), ("vm_events", "at"), ("vm_starts", "at")]
        var boundary = Int64.max
        var pastEveryRow: Int64 = 0
        for (table, time) in tables {
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT min(CASE WHEN at >= ? THEN log_index END) AS young, max(log_index) AS last,
                               (SELECT log_index FROM \(table) ORDER BY log_index LIMIT 1 OFFSET ?) AS beyond
                        FROM (SELECT log_index, \(time) AS at FROM \(table) ORDER BY log_index LIMIT ?)
                        """),
                arguments: [cutoff, limit, limit])
            let young: Int64? = row?["young"]
            let beyond: Int64? = row?["beyond"]
            let last: Int64? = row?["last"]
            if let end = young ?? beyond { boundary = min(boundary, end) }
            if let last { pastEveryRow = max(pastEveryRow, last + 1) }
        }
        if boundary == .max { boundary = pastEveryRow }
        for (table, _) in tables {
            let below = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE log_index < ?)"),
                arguments: [boundary])
            if below == true { return boundary }
        }
        return nil
    }

    /// Whether views of schema `version` apply `history.compacted` records (008 and later; a
    /// version this build does not know is a later one).
    public static func knowsHistoryCompaction(schemaVersion version: String) -> Bool {
        !(0..<historyCompactionFileCount).contains { Schema.version(ofFirst: $0) == version }
    }

    /// How many schema files the views need for `history.compacted` records (up to 008).
    static let historyCompactionFileCount = 8
}
