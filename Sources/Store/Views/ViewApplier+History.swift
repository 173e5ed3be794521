import GRDB

extension ViewApplier {
    /// Deletes the history rows logged before `index`: every row of `intents`, `vm_events` and
    /// `vm_starts`, and every placement but each VM's latest (`dwcp vm explain` and the placement
    /// of a VM that still exists keep theirs). Deterministic: it depends on the rows alone.
    static func compactHistory(before index: Int64, db: Database) throws {
        let compacted =
            try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT history_compacted_index FROM dwcp_state WHERE id = 1")) ?? 0
        guard index > compacted else { return }
        for table in ["intents", "vm_events", "vm_starts"] {
            try db.cachedStatement(sql: "DELETE FROM \(table) WHERE log_index < ?").execute(arguments: [index])
        }
        try db.cachedStatement(
            sql: """
                DELETE FROM placements WHERE log_index < ?
                    AND (EXISTS (SELECT 1 FROM placements AS later
                                 WHERE later.vm = placements.vm AND later.log_index > placements.log_index)
                         OR NOT EXISTS (SELECT 1 FROM vms WHERE vms.name = placements.vm))
                """
        ).execute(arguments: [index])
        try db.cachedStatement(sql: "UPDATE dwcp_state SET history_compacted_index = ? WHERE id = 1")
            .execute(arguments: [index])
    }
}
