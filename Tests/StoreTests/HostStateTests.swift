import GRDB
import Schema
import TestSupport
import Testing

@testable import Store

/// The `host.state_reported` record in the views: a host's state, why it is not ready, and the
/// member whose host agent runs it; views know it from schema 011 on.
@Suite struct HostStateTests {
    static func host(_ views: ViewStore) throws -> [String] {
        try views.pool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT state, state_reason, agent FROM hosts WHERE name = 'h1'")!
            return [row["state"], row["state_reason"], row["agent"]]
        }
    }

    static func placementIndex(_ views: ViewStore) throws -> Int64 {
        try views.pool.read { try Int64.fetchOne($0, sql: "SELECT placement_index FROM dwcp_state")! }
    }

    @Test(
        "a report sets the host's state and reason, and its agent when it names one; an unknown state or host changes nothing"
    )
    func reportsApply() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let added = Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30)))
        _ = try views.apply(ViewStoreTests.entries([added]))
        #expect(try Self.host(views) == ["ready", "", ""])

        let reports = [
            HostStateReported(name: "h1", state: "ready", agent: "n2"),
            HostStateReported(name: "h1", state: "not_ready", reason: "its member n2 has not answered for 10 s"),
            HostStateReported(name: "h1", state: "down"),
            HostStateReported(name: "h9", state: "not_ready", reason: "no such host"),
        ]
        let entries = ViewStoreTests.entries(reports.map { Record(at: 2, .hostStateReported($0)) }, from: 2)
        _ = try views.apply([entries[0]])
        #expect(try Self.host(views) == ["ready", "", "n2"])
        _ = try views.apply([entries[1]])
        #expect(try Self.host(views) == ["not_ready", "its member n2 has not answered for 10 s", "n2"])
        // Placement looks again: the host's state is one of its inputs.
        #expect(try Self.placementIndex(views) == 3)
        _ = try views.apply(Array(entries[2...]))
        #expect(try Self.host(views) == ["not_ready", "its member n2 has not answered for 10 s", "n2"])
        #expect(try Self.placementIndex(views) == 3)
    }

    @Test("views know host.state_reported records from schema 011 on; a version this build does not know counts as not")
    func schemaGate() {
        for count in 0..<11 {
            #expect(!ViewStore.knowsHostState(schemaVersion: Schema.version(ofFirst: count)), "\(count)")
        }
        #expect(ViewStore.knowsHostState(schemaVersion: Schema.version(ofFirst: 11)))
        #expect(ViewStore.knowsHostState(schemaVersion: ViewStore.schemaVersion))
        #expect(!ViewStore.knowsHostState(schemaVersion: "a-later-or-edited-one"))
    }
}
