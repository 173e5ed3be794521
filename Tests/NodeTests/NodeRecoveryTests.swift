import Foundation
import GRDB
import Schema
import Synchronization
import TestSupport
import Testing

@testable import Node
@testable import Store

@Suite struct NodeRecoveryTests {
    /// Writes a little history through a node, then stops it.
    func populate(_ dir: TemporaryDirectory) async throws {
        try await withRunningNode(dir) { node in
            _ = try await node.submit(.addHost(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 16 << 30)))
            for i in 0..<20 {
                _ = try await node.submit(
                    .createVM(VMCreated(name: "vm-\(i)", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")))
            }
            _ = try await node.submit(.deleteVM(name: "vm-3"))
            _ = try await node.submit(.setDesiredState(vm: "vm-4", .stopped))
        }
    }

    /// Writes 31 intents through a single node that snapshots every 10 entries, and stops it once
    /// its log is compacted (it starts past index 21).
    func populateCompacted(_ dir: TemporaryDirectory) async throws {
        try await withRunningNode(dir, snapshotEvery: 10) { node in
            _ = try await node.submit(.addHost(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 16 << 30)))
            for i in 0..<30 {
                _ = try await node.submit(.setHostLabels(name: "h1", labels: ["k": "v\(i)"]))
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while node.log.firstIndex <= 21, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(node.log.firstIndex > 21, "the log was not compacted: it starts at \(node.log.firstIndex)")
        }
    }

    /// Opens a node on `dir` (which catches its views up with the log) and returns the views' dump.
    func openedDump(_ dir: TemporaryDirectory) throws -> (String, String?) {
        let node = try singleNode(at: dir.path)
        return (try node.views.dump(), node.views.rebuildReason)
    }

    /// Opens the single node n1 of region eu on the data directory at `path`, without running it.
    func singleNode(at path: String) throws -> Node {
        try Node(
            configuration: NodeConfiguration(dataDirectory: path, nodeID: "n1", region: "eu"),
            logger: .init(label: "test"))
    }

    @Test("deleted views are rebuilt from the log, identical to what they were")
    func rebuildIdentical() async throws {
        let dir = TemporaryDirectory()
        try await populate(dir)
        let (before, reasonBefore) = try openedDump(dir)
        #expect(reasonBefore == nil)
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: dir.file("views.sqlite" + suffix))
        }
        let rebuilt = try singleNode(at: dir.path)
        #expect(rebuilt.views.rebuildReason == "views.sqlite is missing")
        #expect(try rebuilt.views.dump() == before)
        #expect(before.contains("vm-19"))
        // The replay is counted as applied entries, as every later apply is.
        let applied = metric(rebuilt.metrics.render(node: rebuilt), "dwcp_views_entries_applied_total")
        #expect(applied == Double(rebuilt.applied.value) && rebuilt.applied.value > 20)
    }

    @Test(
        "a node that finds its views damaged stops with an error that says so, and started again rebuilds them from the log, losing nothing"
    )
    func damagedViewsAreRebuilt() async throws {
        let dir = TemporaryDirectory()
        try await populate(dir)
        try overwriteRootPage(of: "intents", inDatabaseAt: dir.file("views.sqlite"))

        // The next intent commits, and its apply meets the damage: the node stops, saying why.
        let h9 = HostAdded(name: "h9", region: "eu", cpus: 8, memoryBytes: 16 << 30)
        await #expect {
            try await withRunningNode(dir) { node in _ = try await node.submit(.addHost(h9)) }
        } throws: { error in
            "\(error)".contains("views.sqlite is damaged") && "\(error)".contains("rebuilds them from the log")
        }
        // Started again, it rebuilds the views: the intent is there, and they equal a rebuild.
        let (rebuilt, reason) = try openedDump(dir)
        #expect(reason?.hasPrefix("views.sqlite was found damaged") == true, "\(reason ?? "")")
        #expect(rebuilt.contains("\"h9\""))
        // The damaged file was set aside while the views were rebuilt, and removed once they were.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.contains("replaced") })
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: dir.file("views.sqlite" + suffix))
        }
        #expect(try openedDump(dir).0 == rebuilt)
    }

    @Test(
        "views whose rows no longer match their indexes are found as the node starts: it stops, and started again rebuilds them"
    )
    func viewsCheckedAtStart() async throws {
        let dir = TemporaryDirectory()
        try await populate(dir)
        let path = dir.file("views.sqlite")
        _ = try await DatabaseQueue(path: path).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        // As a disk might: vm-1x becomes vm-0x in a few rows, behind SQLite's back. Every page
        // stays well-formed; only the indexes no longer agree with the rows.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var flipped = 0
        for offset in 0..<(bytes.count - 5) where flipped < 3 {
            if bytes[offset..<offset + 5].elementsEqual(Array("vm-1".utf8) + [UInt8(ascii: "2")]) {
                bytes[offset + 3] ^= 1
                flipped += 1
            }
        }
        #expect(flipped == 3)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        await #expect {
            // The node's stop closes the waits on its views, with its reason.
            try await withRunningNode(dir) { node in _ = try await node.applied.wait(until: .max, timeout: .seconds(20))
            }
        } throws: { error in
            "\(error)".contains("views.sqlite is damaged")
                && "\(error)".components(separatedBy: "integrity check").count == 2
        }
        let (rebuilt, reason) = try openedDump(dir)
        #expect(reason?.hasPrefix("views.sqlite was found damaged") == true, "\(reason ?? "")")
        #expect(rebuilt.contains("\"vm-12\""))
    }

    @Test(
        "views holding a value the applier never writes (a negative index, text in an INTEGER column) are found as the node starts, before its scheduler reads them: it stops, and started again rebuilds them"
    )
    func strayValuesAreFoundAtStart() async throws {
        for change in [
            "UPDATE dwcp_state SET placement_index = -1",
            "UPDATE vms SET cpus = 'abc', host = NULL, actual_state = 'pending' WHERE name = 'vm-5'",
            // A placed VM's: what a rebalance reads.
            "UPDATE vms SET cpus = 'abc' WHERE name = (SELECT name FROM vms WHERE host IS NOT NULL ORDER BY name LIMIT 1)",
        ] {
            let dir = TemporaryDirectory()
            try await populate(dir)
            let (before, _) = try openedDump(dir)
            try await DatabaseQueue(path: dir.file("views.sqlite")).write { db in try db.execute(sql: change) }
            await #expect {
                try await withRunningNode(dir) { node in
                    // A rebalance asked at once waits for the check (it used to read the odd value
                    // first, and trap).
                    _ = try? await node.rebalancePlan(region: nil, consistency: .local)
                    _ = try await node.applied.wait(until: .max, timeout: .seconds(20))
                }
            } throws: { error in
                "\(error)".contains("views.sqlite is damaged")
                    && "\(error)".contains("holds a value the views never hold")
            }
            let (rebuilt, reason) = try openedDump(dir)
            #expect(reason?.hasPrefix("views.sqlite was found damaged") == true, "\(reason ?? "")")
            #expect(rebuilt == before, "\(change)")
        }
    }

    @Test("no views snapshot is taken before the views passed the check a node makes as it starts")
    func snapshotsWaitForTheViewsCheck() async throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let snapshots = try ViewSnapshots(
            directory: dir.file("snapshots"), views: views, applied: IndexWatermark(0), logger: .init(label: "test"))
        try await withThrowingTaskGroup(of: UInt64.self) { group in
            group.addTask { try await snapshots.take() }
            try await Task.sleep(for: .milliseconds(300))
            #expect(snapshots.latestIndex == nil, "a snapshot was taken before the check")
            snapshots.viewsChecked.advance(to: 1)
            #expect(try await group.next() == 0)
        }
        #expect(snapshots.latestIndex == 0)
    }

    @Test(
        "a member restarted without a majority, its views ahead of the commit index it saved, copies its views into a snapshot once, not over and over"
    )
    func restartedMemberSnapshotsOnce() async throws {
        let dir = TemporaryDirectory()
        let stopped = Mutex<(id: String, peers: [String: String], applied: UInt64)?>(nil)
        try await withThreeMembers(dir) { nodes, peers in
            let leader = try leader(of: nodes)
            let follower = try #require(nodes.first { $0 !== leader })
            for i in 0..<12 { _ = try await leader.submit(NodeIntentTests.host("h\(i)")) }
            let last = leader.log.lastIndex
            #expect(try await waitUntil { follower.applied.value >= last })
            stopped.withLock { $0 = (follower.configuration.nodeID, peers, follower.applied.value) }
        }
        let (id, peers, applied) = try #require(stopped.withLock { $0 })
        let port = try #require(peers[id]?.split(separator: ":").last.flatMap { Int($0) })
        // The commit index a member saves is a hint, behind what its views applied when the commit
        // index last moved alone (it is not written then): here, as far behind as it can be.
        // (A copy of its data directory: the stopped member's log may not be closed in this process
        // yet, and a file can go as it closes, as SQLite's WAL does: copied again then.)
        for attempt in 1...10 {
            do {
                try FileManager.default.copyItem(atPath: dir.file(id), toPath: dir.file("copy"))
                break
            } catch  where attempt < 10 {
                try? FileManager.default.removeItem(atPath: dir.file("copy"))
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        do {
            let log = try LogStore(path: dir.file("copy") + "/log")
            var hardState = log.hardState
            hardState.commit = 1
            try await log.saveHardState(hardState)
        }
        // Alone, so no leader tells it more; a snapshot is due (its views hold more than 4 entries),
        // but Raft may not compact through the views' copy until it learns the commit index again.
        // (Its log, recorded, is shown should no snapshot come: the test has failed now and then.)
        let recorded = RecordedLog()
        let member = try regionMember(
            id, in: dir, name: "copy", port: port, peers: peers, snapshotEvery: 4, logger: recorded.logger)
        try #require(member.raft!.status.committed < applied, "\(member.raft!.status.committed) \(applied)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await member.run() }
            defer { group.cancelAll() }
            let took = try await waitUntil(timeout: .seconds(30)) {
                metric(member.metrics.render(node: member), "dwcp_raft_snapshots_taken_total") == 1
            }
            #expect(took, "no snapshot in 30 s; the member's log:\n\(recorded.lines.joined(separator: "\n"))")
            try await Task.sleep(for: .seconds(1))
            #expect(metric(member.metrics.render(node: member), "dwcp_raft_snapshots_taken_total") == 1)
        }
    }

    @Test("a single node snapshots its views and compacts its log; without views it restarts from the snapshot")
    func singleNodeCompaction() async throws {
        let dir = TemporaryDirectory()
        try await populateCompacted(dir)
        let (before, _) = try openedDump(dir)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots"))
        #expect(files.filter { $0.hasPrefix("views-") }.count == 1, "\(files)")
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: dir.file("views.sqlite" + suffix))
        }
        let (after, reason) = try openedDump(dir)
        #expect(reason == "views.sqlite is missing")
        #expect(after == before)
        #expect(before.contains(#""labels":"{\"k\":\"v29\"}""#))
    }

    @Test(
        "views a failed rebuild replaced are kept, not removed: with the snapshot behind a compacted log lost, they are all that is left"
    )
    func replacedViewsAreKept() async throws {
        let dir = TemporaryDirectory()
        try await populateCompacted(dir)
        let (before, _) = try openedDump(dir)
        // The views' header damaged, and the snapshot the log begins behind gone.
        let views = dir.file("views.sqlite")
        let file = try #require(FileHandle(forUpdatingAtPath: views))
        try file.seek(toOffset: 16)
        try file.write(contentsOf: Data([0xFF, 0xFF, 0xFF, 0xFF]))
        try file.close()
        let damaged = try Data(contentsOf: URL(fileURLWithPath: views))
        let snapshot = try #require(
            try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots")).first { $0.hasPrefix("views-") })
        try FileManager.default.moveItem(atPath: dir.file("snapshots/\(snapshot)"), toPath: dir.file("saved-snapshot"))

        // The start cannot rebuild them, and refuses; the damaged file is kept as it was (it was
        // removed before the rebuild began).
        #expect(throws: (any Error).self) { try singleNode(at: dir.path) }
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
            $0.hasPrefix("views.sqlite.replaced-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm")
        }
        #expect(kept.count == 1, "\(kept)")
        if let kept = kept.first { #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file(kept))) == damaged) }

        // Started again, it still cannot, and the file is still kept (the start before made new,
        // empty views: this one rebuilds nothing, and must not count them as caught up).
        #expect(throws: (any Error).self) { try singleNode(at: dir.path) }
        #expect(ViewStore.replacedFiles(of: views).count == 1)
        // With the snapshot back, the next start rebuilds them, losing nothing, and removes the
        // file it no longer needs.
        try FileManager.default.moveItem(atPath: dir.file("saved-snapshot"), toPath: dir.file("snapshots/\(snapshot)"))
        #expect(try openedDump(dir).0 == before)
        #expect(ViewStore.replacedFiles(of: views).isEmpty)
    }

    @Test("a node whose log starts behind a snapshot that is gone takes a new one at once from its whole views")
    func missingSnapshotIsRetaken() async throws {
        let dir = TemporaryDirectory()
        try await populateCompacted(dir)
        let (before, _) = try openedDump(dir)
        let snapshots = dir.file("snapshots")
        for name in try FileManager.default.contentsOfDirectory(atPath: snapshots) {
            try FileManager.default.removeItem(atPath: snapshots + "/" + name)
        }
        let said = RecordedLog()
        try await withRunningNode(dir, snapshotEvery: 10, logger: said.logger) { node in
            // No write comes: the snapshot is taken because the one the log starts behind is gone.
            let taken = try await waitUntil(timeout: .seconds(20)) {
                (try? FileManager.default.contentsOfDirectory(atPath: snapshots))?.contains { $0.hasPrefix("views-") }
                    == true
            }
            #expect(taken)
            #expect(said.contains("which the log starts behind, is missing"), "\(said.lines)")
        }
        // And the views can be rebuilt again.
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: dir.file("views.sqlite" + suffix))
        }
        #expect(try openedDump(dir).0 == before)
    }

    @Test(
        "a compacted node whose views and snapshot a dwcp before schema 006 wrote starts upgraded, with the same views, from either"
    )
    func upgradeOfACompactedNode() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir, snapshotEvery: 10) { node in
            _ = try await node.submit(.addHost(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 16 << 30)))
            for i in 0..<4 {
                _ = try await node.submit(
                    .createVM(VMCreated(name: "vm-\(i)", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")))
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while try await rows(node, "SELECT count(*) FROM vms WHERE host = 'h1'") != "[[4]]",
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            _ = try await node.submit(.setDesiredState(vm: "vm-1", .stopped))
            _ = try await node.submit(.deleteVM(name: "vm-2"))  // h1's last change to its VMs
            for i in 0..<30 {
                _ = try await node.submit(.setHostLabels(name: "h1", labels: ["k": "v\(i)"]))
            }
            while node.log.firstIndex <= 21, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(node.log.firstIndex > 21, "the log was not compacted: it starts at \(node.log.firstIndex)")
        }
        let (before, _) = try openedDump(dir)
        #expect(before.contains(#""name":"h1""#) && !before.contains(#""vms_changed_index":0"#), "\(before)")
        let snapshotNames = try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots"))
        let snapshot = try #require(
            snapshotNames.first { $0.hasPrefix("views-") && $0.hasSuffix(".sqlite") }.map {
                dir.file("snapshots/" + $0)
            })
        try rewriteAsViewsBeforeSchema006(at: dir.file("views.sqlite"))
        try rewriteAsViewsBeforeSchema006(at: snapshot)
        func schemaVersion(_ path: String) throws -> String? {
            try DatabaseQueue(path: path).read { db in
                try String.fetchOne(db, sql: "SELECT schema_version FROM dwcp_state")
            }
        }

        // The views, ahead of the snapshot, are upgraded in place; the snapshot is not needed.
        let (upgraded, reason) = try openedDump(dir)
        #expect(reason == nil)
        #expect(upgraded == before)
        #expect(try schemaVersion(snapshot) == Schema.version(ofFirst: 5))

        // Without the views, the node starts from the snapshot, upgraded, and replays the log after it.
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: dir.file("views.sqlite" + suffix))
        }
        let (restored, restoredReason) = try openedDump(dir)
        #expect(restoredReason == "views.sqlite is missing")
        #expect(restored == before)
        #expect(try schemaVersion(snapshot) == Schema.version)

        // A snapshot that a member not yet upgraded sends is upgraded as it is installed.
        try rewriteAsViewsBeforeSchema006(at: snapshot)
        let other = TemporaryDirectory()
        let views = try ViewStore(path: other.file("views.sqlite"))
        let snapshots = try ViewSnapshots(
            directory: other.file("snapshots"), views: views, applied: IndexWatermark(), logger: .init(label: "test"))
        let index = try #require(UInt64(snapshot.split(separator: "-").last!.dropLast(".sqlite".count)))
        try FileManager.default.copyItem(atPath: snapshot, toPath: snapshots.path(index))
        try await snapshots.install(index)
        #expect(snapshots.applied.value == index)
        #expect(try schemaVersion(snapshots.path(index)) == Schema.version)
        #expect(try views.dump() == ViewStore(path: snapshots.path(index)).dump())
    }

    @Test("a snapshot holds the views' rows without the pages that history compaction freed")
    func snapshotLeavesFreedPagesOut() async throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        // 2,000 relabels (each an intents row) of one host, then their compaction.
        let labels = ["note": String(repeating: "x", count: 300)]
        var records = [
            Record(
                at: 1_000, requestID: "h",
                .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 8 << 30)))
        ]
        for i in 1...2_000 {
            records.append(
                Record(
                    at: 1_000 + Int64(i), requestID: "r\(i)", .hostLabelsSet(HostLabelsSet(name: "h1", labels: labels)))
            )
        }
        records.append(Record(at: 9_000, .historyCompacted(HistoryCompacted(beforeIndex: 2_001))))
        let entries = logEntries(records)
        #expect(try await views.apply(entries) == 2_002)
        func pages(_ pool: some DatabaseReader) throws -> (count: Int, free: Int) {
            try pool.read { db in
                (try Int.fetchOne(db, sql: "PRAGMA page_count")!, try Int.fetchOne(db, sql: "PRAGMA freelist_count")!)
            }
        }
        let live = try pages(views.pool)
        #expect(live.free > 100, "the compaction freed \(live.free) pages")

        let snapshots = try ViewSnapshots(
            directory: dir.file("snapshots"), views: views, applied: IndexWatermark(), logger: .init(label: "test"))
        snapshots.viewsChecked.advance(to: 1)  // (As a running node's check does.)
        let index = try await snapshots.take()
        #expect(index == 2_002)
        var readOnly = Configuration()
        readOnly.readonly = true
        let copy = try pages(try DatabaseQueue(path: snapshots.path(index), configuration: readOnly))
        #expect(copy.free == 0)
        #expect(copy.count <= live.count - live.free, "snapshot \(copy.count) pages, views \(live)")
        #expect(try views.dump() == ViewStore(path: snapshots.path(index)).dump())
    }

    @Test(
        "pruning removes the snapshots behind the log's snapshot on disk with their WAL and SHM files; the kept one and newer ones (a copy or a received snapshot on its way) stay whole"
    )
    func pruneKeepsTheKeptSnapshotWhole() throws {
        let dir = TemporaryDirectory()
        let snapshots = try ViewSnapshots(
            directory: dir.file("snapshots"), views: try ViewStore(path: dir.file("views.sqlite")),
            applied: IndexWatermark(), logger: .init(label: "test"))
        let names = [
            "views-3.sqlite", "views-3.sqlite-wal", "views-5.sqlite", "views-5.sqlite-wal", "views-5.sqlite-shm",
            "received-4.sqlite", "received-4.sqlite-wal", "received-9.sqlite", "views-7.sqlite",
        ]
        for name in names {
            #expect(FileManager.default.createFile(atPath: dir.file("snapshots/" + name), contents: nil))
        }
        // The log is compacted behind 5 on disk; the copy at 7 may be about to take its place (a
        // prune that removed it raced a compaction and left a log naming a missing file).
        snapshots.prune(behind: 5)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots")).sorted()
        #expect(
            left == [
                "received-9.sqlite", "views-5.sqlite", "views-5.sqlite-shm", "views-5.sqlite-wal", "views-7.sqlite",
            ])
    }

    @Test("a damaged log entry stops the node at start, naming the entry")
    func damagedEntry() async throws {
        let dir = TemporaryDirectory()
        try await populate(dir)
        do {
            let log = try LogStore(path: dir.file("log"))
            var frame = try log.environment.read { txn in
                try log.environment.get(txn, log.entriesDatabase, key: LogStore.key(5))!
            }
            frame[frame.count - 6] ^= 0xff
            try log.environment.write { txn in
                try LMDBEnvironment.put(txn, log.entriesDatabase, key: LogStore.key(5), value: frame)
            }
        }
        await #expect {
            try await withRunningNode(dir) { _ in }
        } throws: { error in
            // The entry named, and where the log is, and what to do.
            guard let refusal = error as? NodeError, let e = refusal.cause as? StoreError else { return false }
            return e.code == .corruptEntry && e.index == 5 && refusal.message.contains("log entry 5 is damaged")
                && refusal.message.contains("the log in \(dir.file("log")) is damaged")
                && refusal.message.contains("On a region's member: empty its data directory")
        }
    }
}

extension NodeRecoveryTests {
    @Test(
        "a leader whose snapshot file was damaged on its disk takes a new one when a member needs it, instead of sending one every member refuses"
    )
    func aDamagedSnapshotIsTakenAgainBeforeItIsSent() async throws {
        let dir = TemporaryDirectory()
        let (p1, p2) = (try closedPort(), try closedPort())
        let p3 = try closedPort()
        let leader = try regionMember("n1", in: dir, port: p1, peers: ["n1": "127.0.0.1:\(p1)"], snapshotEvery: 5)
        let first = try regionMember("n3", in: dir, port: p3, peers: ["n1": "127.0.0.1:\(p1)"], join: true)
        let joiner = try regionMember("n2", in: dir, port: p2, peers: ["n1": "127.0.0.1:\(p1)"], join: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await leader.run() }
            defer { group.cancelAll() }
            try #require(try await waitUntil { leader.raft!.isLeader })
            for name in ["a", "b", "c", "d", "e", "f"] { _ = try await leader.submit(NodeIntentTests.host(name)) }
            #expect(try await waitUntil { leader.log.snapshot.index > 0 })
            // Sent whole once first: a file damaged after it left is checked again all the same.
            group.addTask { try await first.run() }
            _ = try await leader.raft!.changeMembership(.addLearner(id: "n3", address: "127.0.0.1:\(p3)"))
            #expect(try await waitUntil(timeout: .seconds(30)) { first.applied.value >= leader.log.snapshot.index })
            // At rest: the snapshot the entries so far call for is taken and the log compacted behind
            // it (a snapshot is counted before the compaction), so the count rises below only for a
            // retake; the one file to damage is the one Raft sends.
            #expect(try await waitUntil { leader.applied.value < leader.log.snapshot.index + 5 })
            let taken = metric(leader.metrics.render(node: leader), "dwcp_raft_snapshots_taken_total") ?? 0
            // Damaged on this disk, past its first page: SQLite still opens it, quick_check does not pass.
            let file = leader.snapshots.path(leader.log.snapshot.index)
            let handle = try #require(FileHandle(forUpdatingAtPath: file))
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: 4096)
            handle.write(Data(repeating: 0xA5, count: Int(size) - 4096))
            try handle.close()

            group.addTask { try await joiner.run() }
            _ = try await leader.raft!.changeMembership(.addLearner(id: "n2", address: "127.0.0.1:\(p2)"))
            let written = leader.log.lastIndex
            #expect(
                try await waitUntil(timeout: .seconds(30)) { joiner.applied.value >= written }, "n2 never caught up")
            #expect(metric(leader.metrics.render(node: leader), "dwcp_raft_snapshots_taken_total")! > taken)
            #expect(try await rows(joiner, "SELECT count(*) FROM hosts") == "[[6]]")
        }
    }
}

extension NodeRecoveryTests {
    @Test("views ahead of the log are refused with what may have happened and what to do")
    func viewsAheadOfTheLogSayWhatToDo() async throws {
        let longer = TemporaryDirectory()
        try await populate(longer)
        let shorter = TemporaryDirectory()
        try await withRunningNode(shorter) { node in _ = try await node.submit(NodeIntentTests.host("h1")) }
        // The views of the longer history beside the shorter log (as a log that lost its tail).
        for suffix in ["", "-wal", "-shm"] {
            let from = longer.path + "/views.sqlite" + suffix
            let to = shorter.path + "/views.sqlite" + suffix
            try? FileManager.default.removeItem(atPath: to)
            if FileManager.default.fileExists(atPath: from) {
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        let error = try #require(
            await refusal { try singleNode(at: shorter.path) }, "views ahead of the log opened")
        #expect(error.message.contains("the log lost entries the views applied"), "\(error.message)")
        #expect(error.message.contains("region.journal"), "\(error.message)")
        #expect(error.message.contains("move \(shorter.path)/views.sqlite aside"), "\(error.message)")
    }
}

extension NodeRecoveryTests {
    @Test(
        "a snapshot the log starts behind, gone or damaged at start, is named, with what to do: for a member and for a single node"
    )
    func anUnreadableSnapshotAtStartSaysWhatToDo() async throws {
        // A region member: its snapshot file is gone.
        let dir = TemporaryDirectory()
        let port = try closedPort()
        let peers = ["n1": "127.0.0.1:\(port)"]
        // (In a function of its own: the member lets its data directory go when it is released.)
        func compacted() async throws -> UInt64 {
            let member = try regionMember("n1", in: dir, port: port, peers: peers, snapshotEvery: 5)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await member.run() }
                defer { group.cancelAll() }
                try #require(try await waitUntil { member.raft!.isLeader })
                for name in ["a", "b", "c", "d", "e", "f"] { _ = try await member.submit(NodeIntentTests.host(name)) }
                #expect(try await waitUntil { member.log.snapshot.index > 0 })
                return member.log.snapshot.index
            }
        }
        let snapshot = try await compacted()
        let file = dir.file("n1") + "/snapshots/views-\(snapshot).sqlite"
        try FileManager.default.removeItem(atPath: file)
        let gone = try #require(
            await refusal { try regionMember("n1", in: dir, port: port, peers: peers, snapshotEvery: 5) },
            "a member whose snapshot file is gone opened")
        #expect(gone.message.contains("views snapshot \(snapshot) is missing (\(file))"), "\(gone.message)")
        #expect(gone.message.contains("dwcp cluster remove-member n1"), "\(gone.message)")

        // A single node without views: its snapshot file is damaged.
        let single = TemporaryDirectory()
        try await withRunningNode(single, snapshotEvery: 5) { node in
            for name in ["a", "b", "c", "d", "e", "f"] { _ = try await node.submit(NodeIntentTests.host(name)) }
            #expect(try await waitUntil { node.log.snapshot.index > 0 })
        }
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: single.file("views.sqlite" + suffix))
        }
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: single.file("snapshots"))
        let damaged = single.file("snapshots") + "/" + (try #require(snapshots.first { $0.hasPrefix("views-") }))
        try Data(repeating: 0xA5, count: 8192).write(to: URL(fileURLWithPath: damaged))
        let unreadable = try #require(
            await refusal { try singleNode(at: single.path) },
            "a single node whose snapshot is damaged opened without views")
        #expect(unreadable.message.contains(damaged), "\(unreadable.message)")
        #expect(unreadable.message.contains("restore the file from a backup"), "\(unreadable.message)")
    }
}
