import GRDB
import Schema

extension ViewStore {
    /// The most rows of each history table one `history.compacted` record removes, so that its
    /// apply stays short (BENCHMARKS.md, bench/store, "History compaction").
    public static let historyRowsPerCompaction = 10_000

    /// The index to compact before, or nil when no history row is older than `cutoff` (ms since
    /// the epoch). Rows are logged in time order as far as the proposers' clocks agree, so the
    /// old rows of each timed table (`intents`, `vm_events`, `vm_starts`) are a prefix. Each table
    /// bounds the boundary at its first row at or after the cutoff, or, when its first `limit`
    /// rows are all older, at the row after them; a table whose rows are all older bounds nothing.
    /// So no row at or after the cutoff goes, whatever the clocks did: a row stamped by a clock
    /// running ahead holds compaction back until its time has passed. Placements carry no time:
    /// they follow the others' boundary. The boundary is never above `cap`.
    public static func historyCompactionBoundary(
        olderThan cutoff: Int64, limit: Int, atMost cap: Int64 = .max, _ db: Database
    ) throws -> Int64? {
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
        boundary = min(boundary, cap)
        for (table, _) in tables {
            let below = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE log_index < ?)"),
                arguments: [boundary])
            if below == true { return boundary }
        }
        return nil
    }

    /// How far `history.compacted` records have reached: the history before it is gone.
    static func historyCompactedIndex(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT history_compacted_index FROM dwcp_state WHERE id = 1")) ?? 0
    }

    /// Whether views of schema `version` apply `history.compacted` records: views of 008 or
    /// later that this build knows. A version it does not know counts as one that cannot: it may
    /// be a later dwcp's, or one built from schema files edited before they landed; the leader
    /// is upgraded last (docs/architecture.md, "Upgrading dwcp"), and compacts from then on.
    public static func knowsHistoryCompaction(schemaVersion version: String) -> Bool {
        schemaVersion(version, holdsFirst: historyCompactionFileCount)
    }

    /// Whether `version` is that of views built from at least the first `count` schema files of
    /// this build (a version it does not know counts as not: a later dwcp's, or files edited
    /// before they landed). The gate for a record kind that needs a schema file.
    static func schemaVersion(_ version: String, holdsFirst count: Int) -> Bool {
        (count...Schema.files.count).contains { Schema.version(ofFirst: $0) == version }
    }

    /// How many schema files the views need for `history.compacted` records (up to 008).
    static let historyCompactionFileCount = 8
}
