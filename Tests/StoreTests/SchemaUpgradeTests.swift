import Foundation
import GRDB
import Schema
import TestSupport
import Testing

@testable import Store

/// Views written by an earlier dwcp are upgraded in place, and the upgrade gives the rows that
/// views rebuilt from the whole log would have.
@Suite struct SchemaUpgradeTests {
    /// A history that moves `hosts.vms_changed_index` every way the applier moves it, with the
    /// cases an upgrade must reconstruct from what the views keep: a VM deleted from a host after
    /// its last other change, a VM name used again on another host or nowhere, and a host removed
    /// and added again under its old name.
    static let history: [Record] = {
        var records: [Record] = []
        func add(_ body: Record.Body) { records.append(Record(at: 1_000 + Int64(records.count), body)) }
        func vm(_ name: String) -> Record.Body {
            .vmCreated(VMCreated(name: name, region: "eu", cpus: 1, memoryBytes: 1 << 30, image: "builtin:hello"))
        }
        for host in ["h1", "h2", "h3", "h4"] {
            add(.hostAdded(HostAdded(name: host, region: "eu", cpus: 8, memoryBytes: 16 << 30)))
        }
        for name in ["a", "b", "c", "d"] { add(vm(name)) }
        add(.vmPlaced(VMPlaced(vm: "a", host: "h1", explanation: "{}")))
        add(.vmPlaced(VMPlaced(vm: "b", host: "h2", explanation: "{}")))
        add(.vmPlaced(VMPlaced(vm: "c", host: "h1", explanation: "{}")))
        add(.vmUnschedulable(VMUnschedulable(vm: "d", reason: "no room")))
        add(.vmDesiredStateSet(VMDesiredStateSet(name: "a", desiredState: .stopped)))
        add(.vmDesiredStateSet(VMDesiredStateSet(name: "d", desiredState: .stopped)))  // not placed: no host moves
        add(.vmStateReported(VMStateReported(vm: "a", host: "h1", state: "running")))
        add(.vmStateReported(VMStateReported(vm: "c", host: "h2", state: "running")))  // refused: c is on h1
        add(.vmDeleted(VMDeleted(name: "c")))  // h1's last change: a delete
        add(.vmDeleted(VMDeleted(name: "d")))  // never placed
        add(vm("c"))
        add(.vmPlaced(VMPlaced(vm: "c", host: "h3", explanation: "{}")))
        add(.vmDeleted(VMDeleted(name: "c")))  // h3's last change
        add(vm("c"))
        add(.vmDeleted(VMDeleted(name: "c")))  // c again, never placed: h3 does not move
        add(.vmDeleted(VMDeleted(name: "b")))
        add(.hostRemoved(HostRemoved(name: "h2")))
        add(.hostAdded(HostAdded(name: "h2", region: "eu", cpus: 8, memoryBytes: 16 << 30)))  // a new h2: 0
        add(.hostLabelsSet(HostLabelsSet(name: "h1", labels: ["ssd": "1"])))  // labels do not move it
        add(vm("e"))
        add(.vmPlaced(VMPlaced(vm: "e", host: "h4", explanation: "{}")))
        add(.vmStateReported(VMStateReported(vm: "e", host: "h4", state: "running")))  // h4's last change
        add(vm("f"))
        add(.vmPlaced(VMPlaced(vm: "f", host: "h2", explanation: "{}")))
        add(.vmStateReported(VMStateReported(vm: "f", host: "h2", state: "running")))
        add(.vmDeleted(VMDeleted(name: "f")))
        add(.hostRemoved(HostRemoved(name: "h2")))
        add(.hostAdded(HostAdded(name: "h2", region: "eu", cpus: 8, memoryBytes: 16 << 30)))
        // A start reported twice (the agent tried again after an answer that never came): one
        // measurement (009).
        add(vm("g"))
        add(.vmPlaced(VMPlaced(vm: "g", host: "h4", explanation: "{}")))
        add(.vmStateReported(VMStateReported(vm: "g", host: "h4", state: "starting")))
        add(.vmStateReported(startOfG))
        add(.vmStateReported(startOfG))
        // A start whose `starting` report was lost: `running` over `running`, still a start.
        add(.vmStateReported(restartOfE))  // h4's last change
        return records
    }()

    static let startOfG = VMStateReported(
        vm: "g", host: "h4", state: "running",
        start: VMStartMeasurement(path: "pool", firstEntryMicroseconds: 900, bootMicroseconds: 4_000))

    static let restartOfE = VMStateReported(
        vm: "e", host: "h4", state: "running",
        start: VMStartMeasurement(path: "cold", firstEntryMicroseconds: 1_200, bootMicroseconds: 6_000))

    /// The index of `startOfG`'s second copy in ``history``.
    static var secondStartOfG: Int { history.count - 1 }

    static var entries: [LogEntry] { ViewStoreTests.entries(history) }

    /// The views of the whole history, applied by this build.
    static func rebuilt(_ dir: TemporaryDirectory) throws -> String {
        let views = try ViewStore(path: dir.file("rebuilt.sqlite"))
        try views.apply(entries)
        return try views.dump()
    }

    @Test("the history covers every case: the rebuilt views' vms_changed_index")
    func historyCoversTheCases() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        try views.apply(Self.entries)
        let changed = try views.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, vms_changed_index FROM hosts ORDER BY name")
                .map { "\($0["name"] as String)=\($0["vms_changed_index"] as Int64)" }
        }
        // h1: c's delete (17) after a's report (15); h2: added again last, nothing since; h3: the
        // first c's delete (21), not the second c's (23); h4: e's second start (42).
        #expect(changed == ["h1=17", "h2=0", "h3=21", "h4=42"])
        // g's start once (40, not its copy at 41), and e's start without a `starting` report (42).
        let starts = try views.pool.read { db in
            try Int.fetchAll(db, sql: "SELECT log_index FROM vm_starts ORDER BY log_index")
        }
        #expect(starts == [Self.secondStartOfG - 1, Self.secondStartOfG + 1])
    }

    @Test("views of 001–005, upgraded at any index and then applied on, equal the views rebuilt from the log")
    func upgradeFromBefore006AtEveryIndex() throws {
        let dir = TemporaryDirectory()
        let expected = try Self.rebuilt(dir)
        for cut in 0...Self.entries.count {
            let path = dir.file("upgraded-\(cut).sqlite")
            do {
                let views = try ViewStore(path: path)
                try views.apply(Array(Self.entries.prefix(cut)))
            }
            try rewriteAsViewsBeforeSchema006(at: path)
            let views = try ViewStore(path: path)
            #expect(views.rebuildReason == nil)
            #expect(views.upgradeNote?.contains("applied 006_host_changes.sql, 007_host_changes_backfill.sql") == true)
            #expect(try views.appliedIndex() == UInt64(cut))
            try views.apply(Array(Self.entries.dropFirst(cut)))
            let dump = try views.dump()
            #expect(dump == expected, "upgraded at index \(cut)")
        }
    }

    @Test(
        "views of 001–006 (the applier kept vms_changed_index) are unchanged by 007, views of 001–007 by 008, of 001–009 by 010, of 001–010 by 011, and of 001–011 by 012",
        arguments: [6, 7, 9, 10, 11])
    func upgradeFromLaterSchemaChangesNothing(files: Int) throws {
        let dir = TemporaryDirectory()
        let expected = try Self.rebuilt(dir)
        for cut in [0, Self.entries.count / 2, Self.entries.count] {
            let path = dir.file("upgraded-\(cut).sqlite")
            do {
                let views = try ViewStore(path: path)
                try views.apply(Array(Self.entries.prefix(cut)))
                try views.pool.write { db in
                    // What a dwcp with these files wrote: 008's column (before 008), 010's (before 010)
                    // and 011's did not exist.
                    if files < 8 { try db.execute(sql: "ALTER TABLE dwcp_state DROP COLUMN history_compacted_index") }
                    if files < 10 { try db.execute(sql: "ALTER TABLE dwcp_state DROP COLUMN region_id") }
                    if files < 11 {
                        try db.execute(sql: "ALTER TABLE hosts DROP COLUMN state_reason")
                        try db.execute(sql: "ALTER TABLE hosts DROP COLUMN agent")
                    }
                    try db.execute(sql: "ALTER TABLE hosts DROP COLUMN evacuated_index")
                    try db.execute(
                        sql: "UPDATE dwcp_state SET schema_version = ?", arguments: [Schema.version(ofFirst: files)])
                }
            }
            let views = try ViewStore(path: path)
            #expect(
                views.upgradeNote?.contains("applied \(Schema.files[files].name)") == true, "\(views.upgradeNote ?? "")"
            )
            try views.apply(Array(Self.entries.dropFirst(cut)))
            #expect(try views.dump() == expected, "upgraded at index \(cut)")
        }
    }

    @Test("views of 001–008 that recorded a start twice keep one after 009, as views rebuilt from the log do")
    func upgradeDropsStartsRecordedTwice() throws {
        let dir = TemporaryDirectory()
        let expected = try Self.rebuilt(dir)
        for cut in [Self.secondStartOfG - 1, Self.secondStartOfG, Self.entries.count] {
            let path = dir.file("upgraded-\(cut).sqlite")
            do {
                let views = try ViewStore(path: path)
                try views.apply(Array(Self.entries.prefix(cut)))
                try views.pool.write { db in
                    // What a dwcp with 001–008 wrote: every report with a start measured one.
                    if cut >= Self.secondStartOfG {
                        let start = Self.startOfG.start!
                        try db.execute(
                            sql: "INSERT INTO vm_starts VALUES (?, 'g', 'h4', ?, ?, ?, ?)",
                            arguments: [
                                Self.secondStartOfG, Self.history[Self.secondStartOfG - 1].at, start.path,
                                start.firstEntryMicroseconds, start.bootMicroseconds,
                            ])
                    }
                    try db.execute(sql: "ALTER TABLE dwcp_state DROP COLUMN region_id")
                    try db.execute(sql: "ALTER TABLE hosts DROP COLUMN state_reason")
                    try db.execute(sql: "ALTER TABLE hosts DROP COLUMN agent")
                    try db.execute(sql: "ALTER TABLE hosts DROP COLUMN evacuated_index")
                    try db.execute(
                        sql: "UPDATE dwcp_state SET schema_version = ?", arguments: [Schema.version(ofFirst: 8)])
                }
            }
            let views = try ViewStore(path: path)
            #expect(views.upgradeNote?.contains("applied 009_vm_starts_once.sql") == true, "\(views.upgradeNote ?? "")")
            try views.apply(Array(Self.entries.dropFirst(cut)))
            #expect(try views.dump() == expected, "upgraded at index \(cut)")
        }
    }

    @Test("each earlier schema, upgraded, has exactly the tables, columns and indexes of new views")
    func upgradedSchemaIsTheNewSchema() throws {
        let dir = TemporaryDirectory()
        func schema(_ path: String) throws -> [String] {
            try DatabaseQueue(path: path).read { db in
                try String.fetchAll(
                    db, sql: "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
            }
        }
        let expected = try schema(try ViewStore(path: dir.file("new.sqlite")).path)
        for count in Schema.oldestUpgradableCount..<Schema.files.count {
            let path = dir.file("from-\(count).sqlite")
            try DatabaseQueue(path: path).write { db in
                for file in Schema.files.prefix(count) { try db.execute(sql: file.sql) }
                try db.execute(
                    sql: "INSERT INTO dwcp_state (id, applied_index, applied_term, schema_version) VALUES (1, 0, 0, ?)",
                    arguments: [Schema.version(ofFirst: count)])
            }
            let views = try ViewStore(path: path)
            #expect(views.rebuildReason == nil, "from \(count) files")
            #expect(try schema(path) == expected, "from \(count) files")
        }
    }

    @Test("the versions earlier dwcps wrote still name a prefix of the schema files (the files are append-only)")
    func releasedVersionsArePrefixes() {
        // What dwcp wrote into dwcp_state.schema_version with 001–005 (2026-12-02) and with 001–006
        // (2026-12-03). An edit of any of those files changes these, and strands such views.
        #expect(Schema.version(ofFirst: 5) == "6eeba170270f4f26")
        #expect(Schema.version(ofFirst: 6) == "554b375bf72b85a6")
        #expect(Schema.filesToUpgrade(from: "6eeba170270f4f26")?.map(\.name).first == "006_host_changes.sql")
        #expect(Schema.filesToUpgrade(from: Schema.version)?.isEmpty == true)
        #expect(Schema.filesToUpgrade(from: Schema.version(ofFirst: 4)) == nil)  // older than upgrades go
        #expect(Schema.filesToUpgrade(from: "0123456789abcdef") == nil)
    }

    @Test("a snapshot file is upgraded in place; one of an unknown schema is refused, untouched")
    func snapshotFileUpgrade() throws {
        let dir = TemporaryDirectory()
        let expected = try Self.rebuilt(dir)
        let path = dir.file("snapshot.sqlite")
        do {
            let views = try ViewStore(path: path)
            try views.apply(Self.entries)
            try views.checkpointNow()
        }
        try rewriteAsViewsBeforeSchema006(at: path)
        let note = try ViewStore.upgradeFile(at: path)
        #expect(note?.contains("from schema version 6eeba170270f4f26") == true)
        // The upgrade was made on a copy renamed over the file: nothing beside it, no WAL of its own.
        let beside = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(
            !beside.contains { $0.hasPrefix(ViewStore.upgradingPrefix) || $0.hasPrefix("snapshot.sqlite-") },
            "\(beside)")
        #expect(try ViewStore.upgradeFile(at: path) == nil)
        #expect(try ViewStore(path: path).dump() == expected)

        let tooOld = dir.file("too-old.sqlite")
        try DatabaseQueue(path: tooOld).write { db in
            for file in Schema.files.prefix(4) { try db.execute(sql: file.sql) }
            try db.execute(
                sql: "INSERT INTO dwcp_state (id, applied_index, applied_term, schema_version) VALUES (1, 7, 1, ?)",
                arguments: [Schema.version(ofFirst: 4)])
        }
        #expect {
            try ViewStore.upgradeFile(at: tooOld)
        } throws: { error in
            (error as? StoreError)?.code == .unsupportedVersion && "\(error)".contains("empty data directory")
        }

        let newer = dir.file("newer.sqlite")
        try DatabaseQueue(path: newer).write { db in
            for file in Schema.files { try db.execute(sql: file.sql) }
            try db.execute(
                sql: "INSERT INTO dwcp_state (id, applied_index, applied_term, schema_version) VALUES (1, 7, 1, 'ffff')"
            )
        }
        #expect {
            try ViewStore.upgradeFile(at: newer)
        } throws: { error in
            (error as? StoreError)?.code == .unsupportedVersion && "\(error)".contains("schema version ffff")
                && "\(error)".contains("newer dwcp")
        }
        #expect(
            try DatabaseQueue(path: newer).read { db in
                try String.fetchOne(db, sql: "SELECT schema_version FROM dwcp_state")
            } == "ffff")
    }
}
