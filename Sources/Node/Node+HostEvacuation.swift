import GRDB
import Store

extension Node {
    /// Refuses to evacuate `host` while a member's views could not apply `host.evacuated` (a
    /// member of an earlier dwcp would stop at the record), or a member does not answer to say.
    /// The member whose host agent ran the host is passed over when it does not answer: that is
    /// usually why the host is evacuated.
    func requireEvacuationKnown(host: String) async throws {
        let agent = try views.read { db in
            try String.fetchOne(db, sql: "SELECT agent FROM hosts WHERE name = ?", arguments: [host])
        }
        let excused = agent.flatMap { $0.isEmpty ? nil : $0 }
        if let why = await memberWhoseViewsLack(
            "host.evacuated", excusing: excused, know: { ViewStore.knowsHostEvacuation(schemaVersion: $0) })
        {
            throw NodeError(.unavailable, "host \(host) cannot be evacuated now: \(why)")
        }
    }
}
