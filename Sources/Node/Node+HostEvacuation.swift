import GRDB
import Store

extension Node {
    /// Refuses to evacuate `host` while a member's views could not apply `host.evacuated` (a
    /// member of an earlier dwcp would stop at the record), or a member does not answer to say.
    /// Members whose host agent runs a host that is not ready are passed over when they do not
    /// answer: that is usually why a host is evacuated (two hosts may be down at once).
    func requireEvacuationKnown(host: String) async throws {
        let downAgents = try views.read { db in
            try String.fetchSet(db, sql: "SELECT agent FROM hosts WHERE state = 'not_ready' AND agent <> ''")
        }
        if let why = await memberWhoseViewsLack(
            "host.evacuated", excusing: downAgents, know: { ViewStore.knowsHostEvacuation(schemaVersion: $0) })
        {
            throw NodeError(.unavailable, "host \(host) cannot be evacuated now: \(why)")
        }
    }

    /// The VMs the evacuation at `index` gave up, by name: the `vm_events` its record wrote (read
    /// from this member's views, which applied it; the same for a retry, whose receipt names the
    /// original's index).
    func vmsEvacuated(at index: UInt64) throws -> [String] {
        try views.read { db in
            try String.fetchAll(
                db, sql: "SELECT vm FROM vm_events WHERE log_index = ? AND to_state = 'pending' ORDER BY vm",
                arguments: [Int64(index)])
        }
    }
}
