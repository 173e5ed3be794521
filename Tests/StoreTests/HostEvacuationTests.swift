import GRDB
import Schema
import TestSupport
import Testing

@testable import Store

/// The `host.evacuated` record in the views: the VMs of a host that is not ready wait to be
/// placed anew, its capacity is free again; views know it from schema 012 on.
@Suite struct HostEvacuationTests {
    /// h1 (8 CPUs, 16 GiB, run by n2's host agent) with VMs a (2 CPUs, 1 GiB) and b (1, 2 GiB);
    /// h2 (hand-added) with c; one record per entry from index 1.
    static let fleet: [Record] = [
        Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 16 << 30))),
        Record(at: 1, .hostAdded(HostAdded(name: "h2", region: "eu", cpus: 8, memoryBytes: 16 << 30))),
        Record(at: 1, .hostStateReported(HostStateReported(name: "h1", state: "ready", agent: "n2"))),
        Record(at: 1, .vmCreated(VMCreated(name: "a", region: "eu", cpus: 2, memoryBytes: 1 << 30, image: "i"))),
        Record(at: 1, .vmCreated(VMCreated(name: "b", region: "eu", cpus: 1, memoryBytes: 2 << 30, image: "i"))),
        Record(at: 1, .vmCreated(VMCreated(name: "c", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "i"))),
        Record(at: 1, .vmPlaced(VMPlaced(vm: "a", host: "h1", explanation: "{}"))),
        Record(at: 1, .vmPlaced(VMPlaced(vm: "b", host: "h1", explanation: "{}"))),
        Record(at: 1, .vmPlaced(VMPlaced(vm: "c", host: "h2", explanation: "{}"))),
    ]

    static func evacuation(_ host: String, at time: Int64 = 5) -> Record {
        Record(at: time, requestID: "evacuate-\(host)-\(time)", .hostEvacuated(HostEvacuated(name: host)))
    }

    static func vms(_ views: ViewStore) throws -> [String] {
        try views.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, host, actual_state, reason FROM vms ORDER BY name").map {
                "\($0["name"] as String) \($0["host"] as String? ?? "-") \($0["actual_state"] as String) \($0["reason"] as String)"
            }
        }
    }

    static func host(_ views: ViewStore, _ name: String) throws -> [Int64?] {
        try views.pool.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT cpus_used, memory_used_bytes, evacuated_index FROM hosts WHERE name = ?",
                arguments: [name])!
            return [row["cpus_used"], row["memory_used_bytes"], row["evacuated_index"]]
        }
    }

    static func outcome(_ views: ViewStore, at index: Int) throws -> [String?] {
        try views.pool.read { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT outcome, error FROM intents WHERE log_index = ?", arguments: [index])
            return [row?["outcome"], row?["error"]]
        }
    }

    @Test(
        "a host that is not ready gives its VMs up: they wait to be placed anew, its capacity is free, and each VM's events say so; other hosts' VMs stay"
    )
    func evacuationMovesTheVMsOff() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        _ = try views.apply(ViewStoreTests.entries(Self.fleet))
        let placed = try Self.vms(views)

        // Ready, with a host agent: its VMs run there. Refused, and nothing changes.
        _ = try views.apply(ViewStoreTests.entries([Self.evacuation("h1")], from: 10))
        let refused = try Self.outcome(views, at: 10)
        #expect(refused == ["rejected", "host h1 is ready; evacuate only a host that is not ready"])
        #expect(try Self.vms(views) == placed)
        #expect(try Self.host(views, "h1") == [3, 3 << 30, nil])

        let down = Record(
            at: 6, .hostStateReported(HostStateReported(name: "h1", state: "not_ready", reason: "n2 has not answered")))
        _ = try views.apply(ViewStoreTests.entries([down, Self.evacuation("h1", at: 7)], from: 11))
        #expect(try Self.outcome(views, at: 12) == ["applied", ""])
        let reason = "evacuated from h1; waiting to be placed anew"
        #expect(
            try Self.vms(views) == [
                "a - pending \(reason)", "b - pending \(reason)",
                "c h2 scheduled placed on h2; waiting for its host agent",
            ])
        #expect(try Self.host(views, "h1") == [0, 0, 12])
        #expect(try Self.host(views, "h2") == [1, 1 << 30, nil])
        let events = try views.pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT vm, from_state, to_state, at FROM vm_events WHERE log_index = 12 ORDER BY vm"
            )
            .map {
                "\($0["vm"] as String) \($0["from_state"] as String)>\($0["to_state"] as String) \($0["at"] as Int64)"
            }
        }
        #expect(events == ["a scheduled>pending 7", "b scheduled>pending 7"])
        // Placement looks again, and the VMs' host changed.
        let (placementIndex, vmsChanged) = try views.pool.read { db in
            (
                try Int64.fetchOne(db, sql: "SELECT placement_index FROM dwcp_state")!,
                try Int64.fetchOne(db, sql: "SELECT vms_changed_index FROM hosts WHERE name = 'h1'")!
            )
        }
        #expect(placementIndex == 12 && vmsChanged == 12)
        // Placed again, elsewhere: the capacity the evacuation freed is not counted twice.
        _ = try views.apply(
            ViewStoreTests.entries(
                [Record(at: 8, .vmPlaced(VMPlaced(vm: "a", host: "h2", explanation: "{}")))], from: 13))
        #expect(try Self.host(views, "h2") == [3, 2 << 30, nil])
        #expect(try Self.host(views, "h1") == [0, 0, 12])
    }

    @Test(
        "a host without a host agent is evacuated as any other once a record says it is not ready; an unknown host is not"
    )
    func handAddedAndUnknownHosts() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        _ = try views.apply(ViewStoreTests.entries(Self.fleet))
        let down = Record(at: 6, .hostStateReported(HostStateReported(name: "h2", state: "not_ready", reason: "gone")))
        _ = try views.apply(
            ViewStoreTests.entries([Self.evacuation("h2"), down, Self.evacuation("h2", at: 8)], from: 10))
        #expect(
            try Self.outcome(views, at: 10) == ["rejected", "host h2 is ready; evacuate only a host that is not ready"])
        #expect(try Self.outcome(views, at: 12) == ["applied", ""])
        #expect(try Self.vms(views).last == "c - pending evacuated from h2; waiting to be placed anew")
        #expect(try Self.host(views, "h2") == [0, 0, 12])
        _ = try views.apply(ViewStoreTests.entries([Self.evacuation("h9")], from: 13))
        #expect(try Self.outcome(views, at: 13) == ["rejected", "no host named h9"])
    }

    @Test("views know host.evacuated records from schema 012 on; a version this build does not know counts as not")
    func schemaGate() {
        for count in 0..<12 {
            #expect(!ViewStore.knowsHostEvacuation(schemaVersion: Schema.version(ofFirst: count)), "\(count)")
        }
        #expect(ViewStore.knowsHostEvacuation(schemaVersion: Schema.version(ofFirst: 12)))
        #expect(ViewStore.knowsHostEvacuation(schemaVersion: ViewStore.schemaVersion))
        #expect(!ViewStore.knowsHostEvacuation(schemaVersion: "a-later-or-edited-one"))
    }
}
