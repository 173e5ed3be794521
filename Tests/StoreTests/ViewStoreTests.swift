import Foundation
import GRDB
import TestSupport
import Testing

@testable import Store

typealias Record = Store.Record

@Suite struct ViewStoreTests {
    /// A small history: two hosts, three VMs, placements, a stop, a delete.
    static let history: [Record] = [
        Record(at: 100, requestID: "a", .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30))),
        Record(
            at: 101, requestID: "b",
            .hostAdded(HostAdded(name: "h2", region: "eu", cpus: 8, memoryBytes: 16 << 30, labels: ["ssd": "1"]))),
        Record(
            at: 102, requestID: "c",
            .vmCreated(VMCreated(name: "web-1", region: "eu", cpus: 2, memoryBytes: 1 << 30, image: "builtin:hello"))),
        Record(at: 103, .vmPlaced(VMPlaced(vm: "web-1", host: "h1", explanation: "{}"))),
        Record(
            at: 104, requestID: "d",
            .vmCreated(VMCreated(name: "web-2", region: "eu", cpus: 4, memoryBytes: 1 << 30, image: "builtin:hello"))),
        Record(at: 105, .vmPlaced(VMPlaced(vm: "web-2", host: "h1", explanation: "{}"))),  // h1 has 2 CPUs left: refused
        Record(at: 106, .vmPlaced(VMPlaced(vm: "web-2", host: "h2", explanation: "{}"))),
        Record(at: 107, requestID: "e", .vmDesiredStateSet(VMDesiredStateSet(name: "web-1", desiredState: .stopped))),
        Record(at: 108, requestID: "f", .vmDeleted(VMDeleted(name: "web-2"))),
        Record(
            at: 109, requestID: "c",
            .vmCreated(VMCreated(name: "web-3", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello"))),  // a retry of "c"
        Record(at: 110, requestID: "g", .hostRemoved(HostRemoved(name: "h1"))),  // refused: web-1 is on it
    ]

    static func entries(_ records: [Record], from first: UInt64 = 1) -> [LogEntry] {
        records.enumerated().map { LogEntry(index: first + UInt64($0.offset), term: 1, payload: $0.element.encoded()) }
    }

    @Test(
        "a placement that names its VM is checked as it applies against that VM and its constraints; one without applies as it always did"
    )
    func placementConstraintsAtApply() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        func vm(_ name: String, group: String? = nil, require: [String: String] = [:]) -> Record {
            var created = VMCreated(name: name, region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello")
            created.group = group
            created.antiAffinity = group == nil ? nil : "hard"
            created.requiredLabels = require
            return Record(at: 1, .vmCreated(created))
        }
        func placed(_ name: String, createdIndex: UInt64? = nil, createdBefore: UInt64? = nil) -> Record {
            Record(
                at: 1,
                .vmPlaced(
                    VMPlaced(
                        vm: name, host: "h1", explanation: "{}", createdIndex: createdIndex,
                        createdBefore: createdBefore)))
        }
        let records = [
            Record(
                at: 1,
                .hostAdded(
                    HostAdded(name: "h1", region: "eu", cpus: 16, memoryBytes: 64 << 30, labels: ["disk": "ssd"]))),
            vm("a", group: "web"),  // 2
            placed("a", createdIndex: 2),  // 3: applied
            vm("b", group: "web"),  // 4
            placed("b", createdIndex: 4),  // 5: refused, h1 runs a VM of group web
            placed("b"),  // 6: without the field, applied as before
            vm("c", require: ["disk": "ssd"]),  // 7
            Record(at: 1, .hostLabelsSet(HostLabelsSet(name: "h1", labels: ["disk": "hdd"]))),  // 8
            placed("c", createdIndex: 7),  // 9: refused, the label changed after the decision
            vm("d"),  // 10
            Record(at: 1, .vmDeleted(VMDeleted(name: "d"))),  // 11
            vm("d"),  // 12: another VM of the same name
            placed("d", createdIndex: 10),  // 13: refused, it was for the first d
            placed("d", createdBefore: 2),  // 14: the d created two entries before: applied
        ]
        try views.apply(Self.entries(records))
        let hosts = try views.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, host FROM vms ORDER BY name").map {
                "\($0["name"] as String)=\($0["host"] as String? ?? "-")"
            }
        }
        #expect(hosts == ["a=h1", "b=h1", "c=-", "d=h1"])
        let placedAt = try views.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT log_index FROM placements ORDER BY log_index")
        }
        #expect(placedAt == [3, 6, 14])
    }

    @Test(
        "an applied index that is no log index (text, which SQLite reads as 0; a negative number) is refused, not taken for 0"
    )
    func appliedIndexThatIsNoIndex() throws {
        let dir = TemporaryDirectory()
        let queue = try DatabaseQueue(path: dir.file("views.sqlite"))
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE dwcp_state (id INTEGER PRIMARY KEY, applied_index INTEGER NOT NULL)")
            try db.execute(sql: "INSERT INTO dwcp_state VALUES (1, 7)")
        }
        #expect(try queue.read { try ViewStore.appliedIndex($0) } == 7)
        for stored in ["'abc'", "-1", "7.5"] {
            try queue.write { db in try db.execute(sql: "UPDATE dwcp_state SET applied_index = \(stored)") }
            #expect(throws: StoreError.self, "\(stored)") { try queue.read { try ViewStore.appliedIndex($0) } }
        }
    }

    @Test("an unschedulable decision that names another VM of the same name is refused; one without the field applies")
    func unschedulableNamesItsVM() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let created = VMCreated(name: "a", region: "eu", cpus: 64, memoryBytes: 1 << 30, image: "builtin:hello")
        func unschedulable(_ reason: String, createdIndex: UInt64? = nil, createdBefore: UInt64? = nil) -> Record {
            Record(
                at: 1,
                .vmUnschedulable(
                    VMUnschedulable(vm: "a", reason: reason, createdIndex: createdIndex, createdBefore: createdBefore)))
        }
        let records = [
            Record(at: 1, .vmCreated(created)),  // 1
            Record(at: 1, .vmDeleted(VMDeleted(name: "a"))),  // 2
            Record(at: 1, .vmCreated(created)),  // 3: another a
            unschedulable("for the first a", createdIndex: 1),  // 4: refused
            unschedulable("planned for the first a", createdBefore: 4),  // 5: index 1: refused
            unschedulable("for this a", createdBefore: 3),  // 6: index 3: applied
            unschedulable("without the field"),  // 7: applied as before
        ]
        try views.apply(Self.entries(records))
        let reasons = try views.pool.read { db in
            try String.fetchAll(db, sql: "SELECT reason FROM vm_events WHERE vm = 'a' ORDER BY log_index")
        }
        #expect(reasons.suffix(2) == ["for this a", "without the field"])
        #expect(!reasons.contains("for the first a") && !reasons.contains("planned for the first a"))
    }

    @Test("a state report that names another VM of the same name (deleted and created again since) is refused")
    func reportsNameTheirVM() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let created = VMCreated(name: "a", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello")
        func report(_ state: String, createdIndex: UInt64?) -> Record {
            Record(
                at: 1, .vmStateReported(VMStateReported(vm: "a", host: "h1", state: state, createdIndex: createdIndex)))
        }
        let records = [
            Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 16 << 30))),
            Record(at: 1, .vmCreated(created)),  // 2
            Record(at: 1, .vmDeleted(VMDeleted(name: "a"))),  // 3
            Record(at: 1, .vmCreated(created)),  // 4: another a
            Record(at: 1, .vmPlaced(VMPlaced(vm: "a", host: "h1", explanation: "{}", createdIndex: 4))),  // 5
            report("stopped", createdIndex: 2),  // 6: the first a's end: refused
            report("starting", createdIndex: 4),  // 7: applied
            report("running", createdIndex: nil),  // 8: without the field: applied as before
        ]
        try views.apply(Self.entries(records))
        let state = try views.pool.read { db in try String.fetchOne(db, sql: "SELECT actual_state FROM vms") }
        #expect(state == "running")
        let events = try views.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT log_index FROM vm_events WHERE vm = 'a' AND log_index > 5 ORDER BY 1")
        }
        #expect(events == [7, 8])
    }

    @Test("applying the history gives the expected rows, and never oversubscribes a host")
    func applyHistory() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        #expect(views.rebuildReason == "views.sqlite is missing")
        #expect(try views.apply(Self.entries(Self.history)) == 11)
        try views.pool.read { db in
            let hosts = try Row.fetchAll(db, sql: "SELECT name, cpus_used, memory_used_bytes FROM hosts ORDER BY name")
            #expect(hosts.map { $0["cpus_used"] as Int } == [2, 0])
            #expect(hosts.map { $0["memory_used_bytes"] as Int64 } == [1 << 30, 0])
            let vm = try Row.fetchOne(db, sql: "SELECT * FROM vms WHERE name = 'web-1'")!
            #expect(vm["host"] as String == "h1")
            #expect(vm["desired_state"] as String == "stopped")
            #expect(vm["actual_state"] as String == "scheduled")
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM vms") == 1)
            let outcomes = try Row.fetchAll(
                db, sql: "SELECT log_index, kind, outcome, error FROM intents ORDER BY log_index")
            #expect(
                outcomes.map { $0["outcome"] as String } == [
                    "applied", "applied", "applied", "applied", "applied", "applied", "duplicate", "rejected",
                ])
            #expect((outcomes.last!["error"] as String).contains("host h1 has 1 VM placed on it"))
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM placements") == 2)
            let events = try String.fetchAll(
                db, sql: "SELECT to_state FROM vm_events WHERE vm = 'web-2' ORDER BY log_index")
            #expect(events == ["pending", "scheduled", "deleted"])
            #expect(try Int.fetchOne(db, sql: "SELECT applied_index FROM dwcp_state") == 11)
        }
    }

    @Test("commits leave their pages in the WAL; a checkpoint, on its own connection, copies them into the file")
    func checkpointFoldsTheWAL() async throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        try await views.apply(Self.entries(Self.history))
        /// The hosts a copy of the database file alone (without its WAL) holds: what checkpoints put there.
        func hostsInTheFileAlone() -> Int {
            let copy = dir.file("copy-\(UUID().uuidString).sqlite")
            guard (try? FileManager.default.copyItem(atPath: dir.file("views.sqlite"), toPath: copy)) != nil,
                let queue = try? DatabaseQueue(path: copy)
            else { return -1 }
            return (try? queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM hosts") }) ?? 0
        }
        #expect(hostsInTheFileAlone() == 0)
        try await views.checkpoint()
        #expect(hostsInTheFileAlone() == 2)
    }

    @Test("lookups see every commit before them, never wait for one another, and cannot write")
    func lookupsSeeCommitsAndCannotWrite() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let hosts = { try views.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM hosts") ?? -1 } }
        #expect(try hosts() == 0)
        try views.apply(Self.entries(Array(Self.history.prefix(2))))
        #expect(try hosts() == 2)
        // Lookups nested deeper than the connections kept idle: each gets a connection of its
        // own at once (a pool of eight, as before, would wait forever at the ninth).
        let depth = LookupConnections.maximumIdle + 4
        func nested(_ level: Int) throws -> [Int] {
            try views.read { db in
                let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM hosts") ?? -1
                return level == depth ? [count] : [count] + (try nested(level + 1))
            }
        }
        #expect(try nested(1) == Array(repeating: 2, count: depth))
        // They come back, up to the number kept.
        #expect(views.lookups.idleCount == LookupConnections.maximumIdle)
        #expect {
            try views.read { db in try db.execute(sql: "DELETE FROM hosts") }
        } throws: { error in
            (error as? DatabaseError)?.resultCode == .SQLITE_READONLY
        }
        #expect(try hosts() == 2)
    }

    @Test("two view files fed the same entries are identical, whatever the batching")
    func deterministic() throws {
        let dir = TemporaryDirectory()
        let a = try ViewStore(path: dir.file("a.sqlite"))
        let b = try ViewStore(path: dir.file("b.sqlite"))
        let entries = Self.entries(Self.history)
        try a.apply(entries)
        for entry in entries { try b.apply([entry]) }
        try b.apply(entries)  // already applied: skipped
        #expect(try a.dump() == b.dump())
        #expect(try b.appliedIndex() == 11)
    }

    @Test(
        "an apply asked for intents' answers gives each its outcome as the intents table has it and its row right after it, and only those asked for that it applied"
    )
    func answersFromTheApply() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let host = HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30)
        let records = [
            Record(at: 1, requestID: "r1", .hostAdded(host)),  // 1
            Record(at: 2, .hostLabelsSet(HostLabelsSet(name: "h1", labels: ["zone": "a"]))),  // 2
            Record(at: 3, .hostLabelsSet(HostLabelsSet(name: "h1", labels: ["zone": "b"]))),  // 3
            Record(at: 4, .hostLabelsSet(HostLabelsSet(name: "h9", labels: [:]))),  // 4: no such host
            Record(at: 5, requestID: "r1", .hostAdded(host)),  // 5: a retry of 1
            Record(at: 6, .vmPlaced(VMPlaced(vm: "x", host: "h1", explanation: "{}"))),  // 6: no intent
        ]
        let h1 = ViewRowName(table: .hosts, name: "h1")
        func asked(_ index: Int, _ subject: ViewRowName) -> IntentAnswer.Request {
            IntentAnswer.Request(payload: records[index - 1].encoded(), subject: subject)
        }
        let wanted: [UInt64: IntentAnswer.Request] = [
            2: asked(2, h1), 4: asked(4, ViewRowName(table: .hosts, name: "h9")), 5: asked(5, h1),
            6: asked(6, ViewRowName(table: .vms, name: "x")), 9: asked(2, h1),
            // Asked about another entry than the one at 3 (another leader's took the index).
            3: IntentAnswer.Request(payload: records[3].encoded(), subject: h1),
        ]
        let first = try views.apply(Self.entries(Array(records[0..<3])), answering: wanted)
        #expect(first.index == 3)
        #expect(Set(first.answers.keys) == [2])  // 3 holds another entry than the one asked about
        // The row as the intent left it, not as the batch did (3 set zone b after it).
        #expect(first.answers[2]?.outcome == "applied")
        #expect(first.answers[2]?.row?["labels"] == .object([("zone", .string("a"))]))
        #expect(first.answers[2]?.row?["updated_index"] == .int(2))

        let second = try views.apply(Self.entries(Array(records[3...]), from: 4), answering: wanted)
        #expect(second.index == 6)
        #expect(Set(second.answers.keys) == [4, 5])  // 6 is no intent; 9 is not applied
        #expect(second.answers[4] == IntentAnswer(outcome: "rejected", error: "no host named h9", row: nil))
        #expect(second.answers[5]?.outcome == "duplicate")
        #expect(second.answers[5]?.row?["labels"] == .object([("zone", .string("b"))]))
        // Word for word what the intents table says.
        let stored = try views.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT log_index, outcome, error FROM intents WHERE log_index IN (2, 4, 5)")
        }
        #expect(stored.count == 3)
        for row in stored {
            let answer = (first.answers.merging(second.answers) { a, _ in a })[UInt64(row["log_index"] as Int64)]
            #expect(answer?.outcome == row["outcome"])
            #expect(answer?.error == row["error"])
        }
        // Nothing asked for: no answers, the same views.
        let plain = try ViewStore(path: dir.file("plain.sqlite"))
        #expect(try plain.apply(Self.entries(records), answering: [:]).answers.isEmpty)
        #expect(try plain.dump() == views.dump())
    }

    @Test("views of another schema version are replaced, and say why")
    func schemaVersionChange() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("views.sqlite")
        do {
            let views = try ViewStore(path: path)
            try views.apply(Self.entries(Self.history))
            try views.pool.write { db in try db.execute(sql: "UPDATE dwcp_state SET schema_version = 'old'") }
        }
        let reopened = try ViewStore(path: path)
        #expect(reopened.rebuildReason?.contains("schema version old") == true)
        #expect(try reopened.appliedIndex() == 0)
        // A version that is no text is said as it is stored, not as an empty version.
        try reopened.pool.write { db in try db.execute(sql: "UPDATE dwcp_state SET schema_version = x'0001'") }
        try reopened.pool.close()
        #expect(try ViewStore(path: path).rebuildReason?.contains("schema version a blob of 2 bytes,") == true)
    }

    @Test("an unreadable views file is replaced")
    func garbageFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("views.sqlite")
        try Data("this is not a database".utf8).write(to: URL(fileURLWithPath: path))
        let views = try ViewStore(path: path)
        #expect(views.rebuildReason?.contains("unreadable") == true)
        #expect(try views.appliedIndex() == 0)
    }

    @Test(
        "views SQLite finds damaged while applying say so and leave a marker; opened again, they are rebuilt and then equal a clean build"
    )
    func damagedViewsAreRebuilt() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("views.sqlite")
        let entries = Self.entries(Self.history)
        do {
            let views = try ViewStore(path: path)
            try views.apply(Array(entries[..<4]))
            try views.checkpointNow()
        }
        // The intents table's root page is overwritten: the file opens, its state row reads, and
        // the next apply (every intent writes a row there) meets the damage.
        try overwriteRootPage(of: "intents", inDatabaseAt: path)
        do {
            let views = try ViewStore(path: path)
            #expect(views.rebuildReason == nil)
            #expect(throws: StoreError.self) { try views.apply(Array(entries[4...])) }
        }
        #expect(FileManager.default.fileExists(atPath: path + ".damaged"))

        let rebuilt = try ViewStore(path: path)
        #expect(
            rebuilt.rebuildReason?.hasPrefix("views.sqlite was found damaged (") == true,
            "\(rebuilt.rebuildReason ?? "")")
        #expect(!FileManager.default.fileExists(atPath: path + ".damaged"))
        #expect(try rebuilt.appliedIndex() == 0)
        try rebuilt.apply(entries)
        let clean = try ViewStore(path: dir.file("clean.sqlite"))
        try clean.apply(entries)
        #expect(try rebuilt.dump() == clean.dump())
    }

    @Test("an intent-path lookup or a snapshot copy that meets damaged views marks them for a rebuild")
    func damageMetByReads() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("views.sqlite")
        do {
            let views = try ViewStore(path: path)
            try await views.apply(Self.entries(Self.history))
            try views.checkpointNow()
        }
        try overwriteRootPage(of: "intents", inDatabaseAt: path)
        let views = try ViewStore(path: path)
        #expect(throws: StoreError.self) {
            try views.read { db in try Row.fetchAll(db, sql: "SELECT * FROM intents") }
        }
        #expect(FileManager.default.fileExists(atPath: path + ".damaged"))
        try FileManager.default.removeItem(atPath: path + ".damaged")
        await #expect(throws: StoreError.self) { _ = try await views.copy(to: dir.file("copy.sqlite")) }
        #expect(FileManager.default.fileExists(atPath: path + ".damaged"))
    }

    @Test(
        "a record carrying a CPU count or memory size the views never hold is refused as it applies, a time outside them is clamped, and the views stay clean"
    )
    func outOfBoundsRecordsAreRefused() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let huge = Int64(1) << 60
        let vm = VMCreated(name: "a", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello")
        var big = vm
        big.cpus = .max
        func report(_ state: String, boot: Int64) -> Record {
            let start = VMStartMeasurement(path: "cold", firstEntryMicroseconds: 10, bootMicroseconds: boot)
            return Record(at: 5, .vmStateReported(VMStateReported(vm: "a", host: "h1", state: state, start: start)))
        }
        let records = [
            Record(at: 1, requestID: "r1", .hostAdded(HostAdded(name: "h0", region: "eu", cpus: 4, memoryBytes: .min))),
            Record(
                at: 1, requestID: "r2", .hostAdded(HostAdded(name: "h1", region: "eu", cpus: -4, memoryBytes: 1 << 30))),
            Record(
                at: -7, requestID: "r3", .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: huge))),
            Record(at: 2, .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 1 << 32))),  // 4: applies
            Record(at: .max, requestID: "r5", .vmCreated(vm)),  // 5: applies, its time clamped
            Record(at: 3, requestID: "r6", .vmCreated(big)),
            Record(at: 4, .vmPlaced(VMPlaced(vm: "a", host: "h1", explanation: "{}"))),
            report("running", boot: -1),  // 8: the state applies, the measurement is left out
            report("running", boot: huge),  // 9: likewise
            Record(at: -1, .vmStateReported(VMStateReported(vm: "a", host: "h1", state: "stopped"))),  // 10: clamped
        ]
        try views.apply(Self.entries(records))
        let intents = try views.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT log_index, outcome, error, submitted_at FROM intents ORDER BY log_index")
        }
        #expect(
            intents.map { $0["outcome"] as String } == [
                "rejected", "rejected", "rejected", "applied", "applied", "rejected",
            ])
        #expect((intents[0]["error"] as String).contains("memory size -9223372036854775808 is outside 0 to"))
        #expect((intents[1]["error"] as String).contains("CPU count -4"))
        #expect((intents[2]["error"] as String).contains("memory size \(huge)"))
        #expect((intents[5]["error"] as String).contains("CPU count \(Int64.max)"))
        #expect(intents.map { $0["submitted_at"] as Int64 } == [1, 1, 0, 2, 1 << 53, 3])
        let (hosts, cpusUsed, state, starts, times, stray) = try views.pool.read { db in
            (
                try String.fetchAll(db, sql: "SELECT name FROM hosts"),
                try Int64.fetchOne(db, sql: "SELECT cpus_used FROM hosts"),
                try String.fetchOne(db, sql: "SELECT actual_state FROM vms"),
                try Int.fetchOne(db, sql: "SELECT count(*) FROM vm_starts"),
                try Int64.fetchAll(db, sql: "SELECT at FROM vm_events ORDER BY log_index"),
                try ViewStore.strayValue(in: db, index: 10)
            )
        }
        #expect(hosts == ["h1"] && cpusUsed == 1 && state == "stopped" && starts == 0)
        #expect(times == [1 << 53, 4, 5, 0])
        #expect(stray == nil)
        #expect(try views.appliedIndex() == 10)
    }

    @Test("a damaged record stops the batch there: what precedes it is applied, the error names the index")
    func damagedRecordInBatch() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        var entries = Self.entries(Array(Self.history.prefix(4)))
        entries[2].payload = [0x01, 0x7e]  // an unknown record type
        #expect {
            try views.apply(entries)
        } throws: { error in
            (error as? StoreError)?.index == 3 && (error as? StoreError)?.code == .unknownRecord
        }
        #expect(try views.appliedIndex() == 2)
        #expect(throws: StoreError.self) { try views.apply(Array(entries[2...])) }
        #expect(try views.appliedIndex() == 2)
    }

    @Test(
        "an apply that fails in SQLite is rolled back whole, and the next one starts clean", arguments: [false, true])
    func failedApplyRollsBack(async: Bool) async throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        // The synchronous overloads (an async context would pick the async ones).
        let applyNow: ([LogEntry]) throws -> UInt64 = { try views.apply($0) }
        let execute: (String) throws -> Void = { sql in try views.pool.write { db in try db.execute(sql: sql) } }
        let entries = Self.entries(Array(Self.history.prefix(3)))
        _ = try applyNow(Array(entries[0...0]))
        // The host row of entry 2 is written before its intents row, which now cannot be.
        try execute("ALTER TABLE intents RENAME TO intents_gone")
        await #expect(throws: DatabaseError.self) {
            if async { try await views.apply(Array(entries[1...1])) } else { _ = try applyNow(Array(entries[1...1])) }
        }
        #expect(try views.appliedIndex() == 1)
        #expect(try views.read { db in try String.fetchAll(db, sql: "SELECT name FROM hosts") } == ["h1"])
        try execute("ALTER TABLE intents_gone RENAME TO intents")
        _ = try applyNow(Array(entries[1...2]))
        #expect(try views.appliedIndex() == 3)
        let hosts = try views.read { db in try String.fetchAll(db, sql: "SELECT name FROM hosts ORDER BY name") }
        #expect(hosts == ["h1", "h2"])
    }

    @Test("a VM created with a check index past what SQLite holds applies like any other (no trap on any member)")
    func checkIndexPastInt64() throws {
        let dir = TemporaryDirectory()
        var vm = VMCreated(name: "web-9", region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello")
        vm.checkIndex = .max
        let views = try ViewStore(path: dir.file("views.sqlite"))
        #expect(try views.apply(Self.entries(Self.history + [Record(at: 9_000, requestID: "z", .vmCreated(vm))])) == 12)
        let body = try views.read { db in
            try String.fetchOne(db, sql: "SELECT payload FROM intents WHERE request_id = 'z'")
        }
        #expect(body?.contains(#""check_index":9223372036854775807"#) == true, "\(body ?? "no intent")")
        #expect(
            try views.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM vms WHERE name = 'web-9'") } == 1)
    }

    @Test("a gap in the entries is refused")
    func gap() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let entries = Self.entries(Self.history)
        #expect(throws: StoreError.self) { try views.apply(Array(entries[3...])) }
        #expect(try views.appliedIndex() == 0)
    }

    @Test("the members table's rows sit in id order, so a read without ORDER BY is alike on every member")
    func membersInIdOrder() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let ids = (1...8).map { "n\($0)" }
        let voters = Dictionary(uniqueKeysWithValues: ids.map { ($0, "h:\($0.dropFirst())") })
        try views.apply([
            LogEntry(index: 1, term: 1, kind: .membership, payload: MembershipRecord(voters: voters).encoded())
        ])
        // (Inserted in a dictionary's order, eight rows come out sorted once in 40,320 runs.)
        let read = try views.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM members").map { $0["id"] as String }
        }
        #expect(read == ids)
    }

    @Test("membership entries become the members table; a malformed one stops the apply, naming the entry")
    func membersTable() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        func membership(_ voters: [String: String], _ learners: [String: String] = [:], at index: UInt64) -> LogEntry {
            LogEntry(
                index: index, term: 1, kind: .membership,
                payload: MembershipRecord(voters: voters, learners: learners).encoded())
        }
        func members() throws -> [String] {
            try views.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM members ORDER BY id").map {
                    "\($0["id"] as String) \($0["address"] as String) \($0["role"] as String) \($0["since_index"] as Int64)"
                }
            }
        }
        try views.apply([
            membership(["a": "h:1", "b": "h:2", "c": "h:3"], at: 1),
            LogEntry(index: 2, term: 2, kind: .noop, payload: []),
            membership(["a": "h:1", "b": "h:2", "c": "h:3"], ["d": "h:4"], at: 3),
        ])
        #expect(try members() == ["a h:1 voter 1", "b h:2 voter 1", "c h:3 voter 1", "d h:4 learner 3"])
        try views.apply([membership(["a": "h:1", "c": "h:3", "d": "h:4"], at: 4)])
        #expect(try members() == ["a h:1 voter 1", "c h:3 voter 1", "d h:4 voter 4"])
        #expect(throws: StoreError.self) {
            try views.apply([LogEntry(index: 5, term: 2, kind: .membership, payload: Array("x y".utf8))])
        }
        #expect(try views.appliedIndex() == 4)
        #expect(try members().count == 3)
    }
}
