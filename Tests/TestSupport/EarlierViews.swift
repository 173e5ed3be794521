import GRDB
import Schema

/// Rewrites a views file (`views.sqlite` or a snapshot) as a dwcp with only the schema files
/// 001–005 would have written it: without `hosts.vms_changed_index` (006),
/// `dwcp_state.history_compacted_index` (008), `dwcp_state.region_id` (010) and
/// `hosts.state_reason` and `hosts.agent` (011) and `hosts.evacuated_index` (012), and with that
/// schema's version. The other rows are
/// already what such a dwcp wrote, as long as no `history.compacted` record was applied: 006 changed
/// the applier only to keep that column.
public func rewriteAsViewsBeforeSchema006(at path: String) throws {
    let queue = try DatabaseQueue(path: path)
    try queue.write { db in
        try db.execute(sql: "ALTER TABLE hosts DROP COLUMN vms_changed_index")
        try db.execute(sql: "ALTER TABLE dwcp_state DROP COLUMN history_compacted_index")
        try db.execute(sql: "ALTER TABLE dwcp_state DROP COLUMN region_id")
        try db.execute(sql: "ALTER TABLE hosts DROP COLUMN state_reason")
        try db.execute(sql: "ALTER TABLE hosts DROP COLUMN agent")
        try db.execute(sql: "ALTER TABLE hosts DROP COLUMN evacuated_index")
        try db.execute(sql: "UPDATE dwcp_state SET schema_version = ?", arguments: [Schema.version(ofFirst: 5)])
    }
    try queue.close()
}
