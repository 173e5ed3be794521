import GRDB
import Schema
import TestSupport
import Testing

@testable import Store

@Suite struct HistoryCompactionTests {
    /// Three VMs placed on one host, one of them deleted, a state report and a relabel, each
    /// record a second apart from 1,000 s; entries from index 1.
    static let history: [Record] = [
        Record(
            at: 1_000_000, requestID: "a",
            .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 8 << 30))),
        Record(
            at: 1_001_000, requestID: "b",
            .vmCreated(VMCreated(name: "web-1", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello"))),
        Record(at: 1_002_000, .vmPlaced(VMPlaced(vm: "web-1", host: "h1", explanation: "{\"n\":1}"))),
        Record(
            at: 1_003_000, requestID: "c",
            .vmCreated(VMCreated(name: "web-2", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello"))),
        Record(at: 1_004_000, .vmPlaced(VMPlaced(vm: "web-2", host: "h1", explanation: "{\"n\":2}"))),
        Record(
            at: 1_005_000, requestID: "d",
            .vmCreated(VMCreated(name: "web-3", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello"))),
        Record(at: 1_006_000, .vmPlaced(VMPlaced(vm: "web-3", host: "h1", explanation: "{\"n\":3}"))),
        Record(at: 1_007_000, requestID: "e", .vmDeleted(VMDeleted(name: "web-2"))),
        Record(at: 1_008_000, .vmStateReported(VMStateReported(vm: "web-1", host: "h1", state: "running"))),
        Record(at: 1_009_000, requestID: "f", .hostLabelsSet(HostLabelsSet(name: "h1", labels: ["rack": "a"]))),
    ]

    static func indexes(_ table: String, _ views: ViewStore) throws -> [Int64] {
        try views.pool.read { db in try Int64.fetchAll(db, sql: "SELECT log_index FROM \(table) ORDER BY log_index") }
    }

    static func compactedIndex(_ views: ViewStore) throws -> Int64? {
        try views.pool.read { db in try Int64.fetchOne(db, sql: "SELECT history_compacted_index FROM dwcp_state") }
    }

    @Test(
        "a history.compacted record deletes the history logged before it, keeps each VM's latest placement, and changes nothing else"
    )
    func compactionDeletesOldHistory() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        _ = try views.apply(ViewStoreTests.entries(Self.history))
        let before = try views.pool.read { db in
            try String.fetchAll(db, sql: "SELECT name || host || actual_state FROM vms ORDER BY name")
        }
        #expect(try Self.indexes("intents", views) == [1, 2, 4, 6, 8, 10])
        #expect(try Self.indexes("placements", views) == [3, 5, 7])

        // Compacted before index 8: the intents and events logged at 1–7 go; so does web-2's
        // placement (web-2 is deleted); web-1's and web-3's stay, being their latest.
        let compaction = Record(at: 1_010_000, .historyCompacted(HistoryCompacted(beforeIndex: 8)))
        #expect(try views.apply(ViewStoreTests.entries([compaction], from: 11)) == 11)
        #expect(try Self.indexes("intents", views) == [8, 10])
        #expect(try Self.indexes("vm_events", views).allSatisfy { $0 >= 8 })
        #expect(try !Self.indexes("vm_events", views).isEmpty)
        #expect(try Self.indexes("placements", views) == [3, 7])
        try views.pool.read { db in
            #expect(try Int64.fetchOne(db, sql: "SELECT history_compacted_index FROM dwcp_state") == 8)
            let after = try String.fetchAll(db, sql: "SELECT name || host || actual_state FROM vms ORDER BY name")
            #expect(after == before)
        }

        // web-1 deleted: its placement is no longer a VM's latest, and the next compaction takes
        // it; one from before the last compaction (index 5) changes nothing.
        let more = [
            Record(at: 1_011_000, requestID: "g", .vmDeleted(VMDeleted(name: "web-1"))),
            Record(at: 1_012_000, .historyCompacted(HistoryCompacted(beforeIndex: 5))),
        ]
        _ = try views.apply(ViewStoreTests.entries(more, from: 12))
        #expect(try Self.indexes("placements", views) == [3, 7])
        #expect(try Self.indexes("intents", views) == [8, 10, 12])
        let last = Record(at: 1_013_000, .historyCompacted(HistoryCompacted(beforeIndex: 12)))
        _ = try views.apply(ViewStoreTests.entries([last], from: 14))
        #expect(try Self.indexes("placements", views) == [7])
        #expect(try Self.indexes("intents", views) == [12])
        #expect(try Self.compactedIndex(views) == 12)
    }

    @Test(
        "a placement goes once its VM is deleted, or deleted and created again under its name, even with no other change; the new one's placement stays"
    )
    func placementsOfEarlierIncarnations() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        func create(_ name: String, at: Int64, id: String) -> Record {
            Record(
                at: at, requestID: id,
                .vmCreated(VMCreated(name: name, region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello")))
        }
        func compact(before index: Int64, at: Int64) -> Record {
            Record(at: at, .historyCompacted(HistoryCompacted(beforeIndex: index)))
        }
        let records = [
            Self.history[0],  // 1: h1
            create("a", at: 1_001_000, id: "a1"),  // 2
            Record(at: 1_002_000, .vmPlaced(VMPlaced(vm: "a", host: "h1", explanation: "{}"))),  // 3
            create("b", at: 1_003_000, id: "b1"),  // 4
            Record(at: 1_004_000, .vmPlaced(VMPlaced(vm: "b", host: "h1", explanation: "{}"))),  // 5
            compact(before: 6, at: 1_005_000),  // 6: both placements are their VMs' latest
            Record(at: 1_006_000, requestID: "a2", .vmDeleted(VMDeleted(name: "a"))),  // 7
            create("a", at: 1_007_000, id: "a3"),  // 8: a again, never placed
            Record(at: 1_008_000, requestID: "b2", .vmDeleted(VMDeleted(name: "b"))),  // 9: nothing else about b
            create("c", at: 1_009_000, id: "c1"),  // 10
            Record(at: 1_010_000, .vmPlaced(VMPlaced(vm: "c", host: "h1", explanation: "{}"))),  // 11
        ]
        _ = try views.apply(ViewStoreTests.entries(records))
        #expect(try Self.indexes("placements", views) == [3, 5, 11])
        _ = try views.apply(ViewStoreTests.entries([compact(before: 12, at: 1_011_000)], from: 12))
        // a's placement belonged to the a that was deleted; b is gone; c's is its latest.
        #expect(try Self.indexes("placements", views) == [11])
        #expect(try Self.indexes("intents", views).isEmpty)
        let vms = try views.pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM vms ORDER BY name") }
        #expect(vms == ["a", "c"])
    }

    @Test("a record cannot compact past itself: a boundary beyond its own index stops at it")
    func compactionStopsAtItsOwnIndex() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        _ = try views.apply(ViewStoreTests.entries(Self.history))
        let far = Record(at: 1_010_000, .historyCompacted(HistoryCompacted(beforeIndex: 1_000_000)))
        let after = Record(at: 1_011_000, requestID: "g", .hostLabelsSet(HostLabelsSet(name: "h1", labels: [:])))
        _ = try views.apply(ViewStoreTests.entries([far, after], from: 11))
        #expect(try Self.indexes("intents", views) == [12])
        #expect(try Self.compactedIndex(views) == 11)
    }

    @Test("members applying the same compactions end with identical views, however the entries were batched")
    func compactionIsDeterministic() throws {
        let dir = TemporaryDirectory()
        let records =
            Self.history + [Record(at: 1_010_000, .historyCompacted(HistoryCompacted(beforeIndex: 6)))]
            + [Record(at: 1_011_000, requestID: "h", .vmDeleted(VMDeleted(name: "web-3")))]
            + [Record(at: 1_012_000, .historyCompacted(HistoryCompacted(beforeIndex: 12)))]
        let whole = try ViewStore(path: dir.file("a.sqlite"))
        _ = try whole.apply(ViewStoreTests.entries(records))
        let oneByOne = try ViewStore(path: dir.file("b.sqlite"))
        for entry in ViewStoreTests.entries(records) { _ = try oneByOne.apply([entry]) }
        #expect(try whole.dump() == oneByOne.dump())
        #expect(try Self.indexes("placements", whole) == [3])
    }

    @Test(
        "the boundary: the prefix of rows older than the cutoff, at most `limit` rows of a table, nil when none is old")
    func boundary() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        func boundary(_ cutoff: Int64, limit: Int = 100) throws -> Int64? {
            try views.pool.read { db in try ViewStore.historyCompactionBoundary(olderThan: cutoff, limit: limit, db) }
        }
        #expect(try boundary(5_000_000) == nil)  // empty views
        _ = try views.apply(ViewStoreTests.entries(Self.history))
        #expect(try boundary(1_000_000) == nil)  // nothing older than the first record
        #expect(try boundary(1_004_500) == 6)  // intents at 1, 2, 4 and events at 2–5 are older
        // Everything is old: past the last row of every table.
        #expect(try boundary(5_000_000) == 11)
        // At most two rows of any table: the intents' third row (index 4) caps it.
        #expect(try boundary(5_000_000, limit: 2) == 4)
        let compaction = Record(at: 1_010_000, .historyCompacted(HistoryCompacted(beforeIndex: 11)))
        _ = try views.apply(ViewStoreTests.entries([compaction], from: 11))
        // Only the latest placements are left, which no compaction takes: nothing to propose.
        #expect(try Self.indexes("placements", views) == [3, 7])
        #expect(try boundary(5_000_000) == nil)
    }

    @Test("views know history.compacted records from schema 008 on; a version this build does not know counts as not")
    func schemaGate() {
        for count in 0..<8 {
            #expect(!ViewStore.knowsHistoryCompaction(schemaVersion: Schema.version(ofFirst: count)), "\(count)")
        }
        #expect(ViewStore.knowsHistoryCompaction(schemaVersion: Schema.version(ofFirst: 8)))
        #expect(ViewStore.knowsHistoryCompaction(schemaVersion: ViewStore.schemaVersion))
        #expect(!ViewStore.knowsHistoryCompaction(schemaVersion: "a-later-or-edited-one"))
    }
}
