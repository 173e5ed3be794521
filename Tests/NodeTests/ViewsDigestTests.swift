import Foundation
import GRDB
import Store
import Synchronization
import TestSupport
import Testing

@testable import Node

/// `dwcp cluster verify`'s digests: every member hashes its views at the index of one marker, so
/// members with the same rows agree table by table, and one whose views were changed behind
/// SQLite's back (damage the start's integrity check cannot see) is told apart.
@Suite struct ViewsDigestTests {
    @Test(
        "members hash their views at the marker's index even while writes go on; a value changed behind SQLite's back shows in that table only"
    )
    func membersAgreeAndDamageShows() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let leader = try leader(of: nodes)
            _ = try await leader.submit(
                .addHost(HostAdded(name: "h1", region: "eu", cpus: 64, memoryBytes: 64 << 30, labels: ["zone": "a"])))
            // The marker lands among writes: each member's batch must end at it.
            let marker = try await withThrowingTaskGroup(of: UInt64?.self) { group in
                for i in 0..<40 {
                    group.addTask {
                        _ = try await leader.submit(
                            .createVM(
                                VMCreated(name: "vm-\(i)", region: "", cpus: 1, memoryBytes: 64 << 20, image: "")))
                        return nil
                    }
                    if i == 20 { group.addTask { try await leader.proposeViewsDigest() } }
                }
                var marker: UInt64?
                for try await index in group where index != nil { marker = index }
                return try #require(marker)
            }
            var first: [String: [TableDigest]] = [:]
            for node in nodes {
                first[node.configuration.nodeID] = try await node.viewsDigest(at: marker, timeout: .seconds(20)).tables
            }
            let leaderDigest = try #require(first[leader.configuration.nodeID])
            #expect(first.values.allSatisfy { $0 == leaderDigest }, "\(first)")
            #expect(leaderDigest.contains { $0.table == "hosts" && $0.rows == 1 })
            #expect(leaderDigest.contains { $0.table == "members" && $0.rows == 3 })
            // Hashed as of the marker: the VMs created after it are not in it.
            let vms = try #require(leaderDigest.first { $0.table == "vms" })
            let before = try await leader.views.pool.read {
                try Int.fetchOne($0, sql: "SELECT count(*) FROM vms WHERE created_index < ?", arguments: [marker])
            }
            #expect(vms.rows == before, "\(vms), \(String(describing: before)) created before index \(marker)")

            // A label changed in one member's file, as the drill did: nothing SQLite checks breaks.
            let damaged = try #require(nodes.first { $0 !== leader })
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)  // The member may be applying meanwhile.
            let writer = try DatabaseQueue(path: damaged.views.path, configuration: configuration)
            try await writer.write { try $0.execute(sql: #"UPDATE hosts SET labels = '{"zone":"b"}'"#) }
            try writer.close()
            let second = try await leader.proposeViewsDigest()
            var digests: [String: [TableDigest]] = [:]
            for node in nodes {
                digests[node.configuration.nodeID] = try await node.viewsDigest(at: second, timeout: .seconds(20))
                    .tables
            }
            let reference = try #require(digests[leader.configuration.nodeID])
            for (id, tables) in digests where id != damaged.configuration.nodeID {
                #expect(tables == reference, "\(id)")
            }
            let differing = zip(try #require(digests[damaged.configuration.nodeID]), reference).filter { $0 != $1 }
            #expect(differing.map(\.0.table) == ["hosts"])
            // The earlier digest is kept as it was.
            #expect(try await leader.viewsDigest(at: marker, timeout: .zero).tables == leaderDigest)
        }
    }

    @Test(
        "markers settle in index order; a wait for one still hashing gives up at its timeout; past two waiting, one more is refused",
        .timeLimit(.minutes(1))
    )
    func digestsSettleInOrder() async throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        let digests = ViewsDigests(views: views)
        func applyMarker(_ index: UInt64) async throws {
            try await views.apply([LogEntry(index: index, term: 1, kind: .noop, payload: LogEntry.viewsDigestMarker)])
        }
        struct CannotOpen: Error {}
        try await applyMarker(1)
        digests.markerApplied(1) { try views.openSnapshot() }
        try await applyMarker(2)
        digests.markerApplied(2) { throw CannotOpen() }
        try await applyMarker(3)
        digests.markerApplied(3) { try views.openSnapshot() }
        try await applyMarker(4)
        digests.markerApplied(4) { try views.openSnapshot() }
        // Nothing hashes yet: 2 failed at once, but settles only after 1.
        #expect(digests.outcome(at: 1) == .hashing)
        guard case .failed(let cannotOpen, readFailed: false)? = digests.outcome(at: 2) else {
            Issue.record("\(String(describing: digests.outcome(at: 2)))")
            return
        }
        #expect(cannotOpen.contains("no snapshot of its views could be opened"))
        guard case .failed(let refused, readFailed: false)? = digests.outcome(at: 4) else {
            Issue.record("\(String(describing: digests.outcome(at: 4)))")
            return
        }
        #expect(refused.contains("it skipped this marker: 2 earlier ones were still being hashed"))
        #expect(digests.settled.value == 0)
        // Nothing settles 1 (the digests do not run yet): without its timeout this wait would
        // last for ever, and the test's time limit fails it. (Not timed here: a task of a full
        // run may resume seconds after its timer fires, queued for the pool's two threads.)
        #expect(try await digests.outcome(at: 1, timeout: .milliseconds(50)) == .hashing)

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await digests.run() }
            defer { group.cancelAll() }
            for (index, rows) in [(1, 1), (3, 1)] {
                guard case .done(let digest)? = try await digests.outcome(at: UInt64(index), timeout: .seconds(10))
                else {
                    Issue.record("\(index): \(String(describing: digests.outcome(at: UInt64(index))))")
                    continue
                }
                #expect(digest.appliedIndex == UInt64(index))
                #expect(digest.tables.first { $0.table == "dwcp_state" }?.rows == rows)
            }
            #expect(try await digests.settled.wait(until: 4, timeout: .seconds(10)) != nil)
            // The two digests differ only in dwcp_state (its applied index).
            guard case .done(let first)? = digests.outcome(at: 1), case .done(let third)? = digests.outcome(at: 3)
            else { return }
            #expect(zip(first.tables, third.tables).filter { $0 != $1 }.map(\.0.table) == ["dwcp_state"])
        }
    }

    @Test(
        "verifies asked together share one marker: one proposes, the others wait for its index; a failed proposal lets the next propose; a settled marker is not shared; a cancelled wait ends"
    )
    func verifiesShareAMarker() async throws {
        let dir = TemporaryDirectory()
        let digests = ViewsDigests(views: try ViewStore(path: dir.file("views.sqlite")))
        let applied = Mutex<UInt64>(0)
        let appliedNow: @Sendable () -> UInt64 = { applied.withLock { $0 } }
        guard case .propose = try await digests.claimProposal(applied: appliedNow) else {
            Issue.record("the first verify did not propose")
            return
        }
        // A second verify, asked while the first proposes, waits for its index.
        async let second = digests.claimProposal(applied: appliedNow)
        #expect(try await eventually(.seconds(10)) { digests.sharersWaiting == 1 })
        digests.proposed(.success(5))
        guard case .share(5) = try await second else {
            Issue.record("the second verify did not share the first one's marker")
            return
        }
        guard case .share(5) = try await digests.claimProposal(applied: appliedNow) else {
            Issue.record("a verify asked before marker 5 applied did not share it")
            return
        }
        // Marker 5 taken in a snapshot (applied past it, no digest begun): not shared.
        applied.withLock { $0 = 6 }
        guard case .propose = try await digests.claimProposal(applied: appliedNow) else {
            Issue.record("a marker applied without a digest was shared")
            return
        }
        // That proposal fails: a verify waiting for it fails the same way, and the next proposes.
        struct NoMajority: Error {}
        async let waiting = digests.claimProposal(applied: appliedNow)
        #expect(try await eventually(.seconds(10)) { digests.sharersWaiting == 1 })
        digests.proposed(.failure(NoMajority()))
        do {
            _ = try await waiting
            Issue.record("a verify waiting for a proposal that failed did not fail")
        } catch is NoMajority {}
        guard case .propose = try await digests.claimProposal(applied: appliedNow) else {
            Issue.record("a verify after a failed proposal did not propose")
            return
        }
        // A verify waiting for that proposal and cancelled (its node stops) ends at once, though
        // the proposal never ends.
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await digests.claimProposal(applied: appliedNow) }
            #expect((try? await eventually(.seconds(10)) { digests.sharersWaiting == 1 }) == true)
            group.cancelAll()
            do {
                try await group.next()
                Issue.record("a cancelled verify waiting for a proposal went on")
            } catch {
                #expect(error is CancellationError, "\(error)")
            }
        }
        #expect(digests.sharersWaiting == 0)
        // The proposer itself cancelled (its node stops): a verify waiting for it is not failed
        // with the proposer's cancellation, it proposes instead.
        async let after = digests.claimProposal(applied: appliedNow)
        #expect(try await eventually(.seconds(10)) { digests.sharersWaiting == 1 })
        digests.proposed(.failure(CancellationError()))
        guard case .propose = try await after else {
            Issue.record("a verify waiting for a cancelled proposer did not propose in its place")
            return
        }
        digests.proposed(.failure(NoMajority()))
    }

    @Test("a watch shows a marker as a no-op that says it is one; other no-ops say nothing more")
    func watchedMarker() {
        let marker = Node.watchLine(LogEntry(index: 3, term: 1, kind: .noop, payload: LogEntry.viewsDigestMarker))
        #expect(
            marker
                == .object([
                    ("log_index", .int(3)), ("term", .int(1)), ("kind", .string("noop")),
                    ("marker", .string("views-digest")),
                ]))
        let plain = Node.watchLine(LogEntry(index: 4, term: 1, kind: .noop, payload: []))
        #expect(plain == .object([("log_index", .int(4)), ("term", .int(1)), ("kind", .string("noop"))]))
    }

    @Test("an index that holds no marker, or one not yet applied in time, is refused, saying which")
    func noDigestWhereNoMarker() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let node = nodes[0]
            let index = node.applied.value
            let missing = await #expect(throws: NodeError.self) {
                try await node.viewsDigest(at: index, timeout: .zero)
            }
            #expect(missing?.code == .notFound)
            #expect(missing?.message.contains("no verify marker is there") == true, "\(String(describing: missing))")
            let ahead = await #expect(throws: NodeError.self) {
                try await node.viewsDigest(at: index + 1_000, timeout: .milliseconds(50))
            }
            #expect(ahead?.code == .unavailable)
        }
    }
}
