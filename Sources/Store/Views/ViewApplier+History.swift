import GRDB

extension ViewApplier {
    /// Deletes the history rows logged before `index`: every row of `intents`, `vm_events` and
    /// `vm_starts`, and the placements before it that are no longer a VM's latest: superseded by
    /// a later placement, or of a VM that no longer exists (deleted, or deleted and created again
    /// under its name after the placement). An existing VM's latest placement stays (`dwcp vm
    /// explain` reads it). Deterministic: it depends on the rows alone.
    static func compactHistory(before index: Int64, db: Database) throws {
        let compacted = try ViewStore.historyCompactedIndex(db)
        guard index > compacted else { return }
        // Only the VMs placed or changed since the last compaction can have a placement that just
        // stopped being their latest (a placement kept then was its VM's latest; what superseded
        // or deleted it since is a placement or an event logged since). Looking at those alone
        // keeps the work to the rows this record removes, not every VM of the fleet.
        try db.cachedStatement(
            sql: """
                DELETE FROM placements
                WHERE vm IN (SELECT vm FROM placements WHERE log_index >= ?1 AND log_index < ?2
                             UNION SELECT vm FROM vm_events WHERE log_index >= ?1 AND log_index < ?2)
                  AND log_index < ?2
                  AND (EXISTS (SELECT 1 FROM placements AS later
                               WHERE later.vm = placements.vm AND later.log_index > placements.log_index)
                       OR NOT EXISTS (SELECT 1 FROM vms
                                      WHERE vms.name = placements.vm AND vms.created_index < placements.log_index))
                """
        ).execute(arguments: [compacted, index])
        for table in ["intents", "vm_events", "vm_starts"] {
            try db.cachedStatement(sql: "DELETE FROM \(table) WHERE log_index < ?").execute(arguments: [index])
        }
        try db.cachedStatement(sql: "UPDATE dwcp_state SET history_compacted_index = ? WHERE id = 1")
            .execute(arguments: [index])
    }
}
