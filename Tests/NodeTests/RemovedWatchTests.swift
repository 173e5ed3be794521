import Foundation
import Replication
import Store
import Synchronization
import TestSupport
import Testing

@testable import Node

/// A watch on a member that the region removes ends, saying so, instead of waiting silently for
/// entries the member will never take again.
@Suite struct RemovedWatchTests {
    /// Removes `id`, asking again while the leader refuses because the member left would not
    /// answer in time (a loaded full test run delays answers past the leader's check).
    static func remove(_ id: String, by leader: Node) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            do {
                _ = try await leader.raft!.changeMembership(.remove(id: id))
                return
            } catch  where "\(error)".contains("must answer") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Adds to `group` a watch of `node` from index 1, which yields the error it ends with (nil:
    /// it ended without one), and a 20-s limit, which yields a `CancellationError`.
    static func watch(_ node: Node, in group: inout ThrowingTaskGroup<(any Error)?, any Error>) {
        group.addTask {
            do {
                try await node.watch(from: 1, limit: nil) { _ in }
                return nil
            } catch {
                return error
            }
        }
        group.addTask {
            try await Task.sleep(for: .seconds(20))
            return CancellationError()
        }
    }

    @Test("a watch on a member that is removed ends with an error that says it was removed")
    func watchOnARemovedMemberEnds() async throws {
        let dir = TemporaryDirectory()
        let logs = ["n1": RecordedLog(), "n2": RecordedLog(), "n3": RecordedLog()]
        try await withThreeMembers(dir, loggers: logs.mapValues(\.logger)) { nodes, _ in
            let leader = try #require(nodes.first { $0.raft!.isLeader })
            let removed = try #require(nodes.first { !$0.raft!.isLeader })
            let id = removed.configuration.nodeID
            #expect(!removed.raft!.wasRemoved)
            try await withThrowingTaskGroup(of: (any Error)?.self) { group in
                Self.watch(removed, in: &group)
                defer { group.cancelAll() }
                try await Task.sleep(for: .milliseconds(200))
                try await Self.remove(id, by: leader)
                _ = try await leader.submit(NodeIntentTests.host("h1"))
                let ended = try await group.next() ?? nil
                let error = try #require(ended as? NodeError, "\(String(describing: ended))")
                #expect(error.message.contains("\(id) was removed from the region"), "\(error)")
                #expect(error.code == .removed)
                #expect(removed.raft!.wasRemoved)
                // Its log says so, once (it learnt it from its own log, not from a leader's notice).
                // (Raft's state, which the watch reads, can change before the line is written.)
                let line = "this member, \(id), was removed from the region"
                #expect(try await waitUntil(timeout: .seconds(10)) { logs[id]!.contains(line) })
                let said = logs[id]!.lines.filter { $0.contains(line) }
                #expect(said.count == 1, "\(logs[id]!.lines.suffix(5))")
                // Intents and consistent reads fail at once, as not worth retrying (410).
                let asked = ContinuousClock.now
                await #expect {
                    _ = try await removed.submit(NodeIntentTests.host("h2"))
                } throws: { ($0 as? NodeError)?.code == .removed }
                await #expect {
                    _ = try await removed.raft!.readIndex()
                } throws: { ($0 as? NodeError)?.code == .removed }
                await #expect {
                    _ = try await removed.sql("SELECT 1", consistency: .leader)
                } throws: { ($0 as? NodeError)?.code == .removed }
                await #expect {
                    _ = try await removed.raft!.moveLeadership(to: nil, timeout: .seconds(1))
                } throws: { ($0 as? NodeError)?.code == .removed }
                _ = try await removed.sql("SELECT 1", consistency: .local)
                // The codes above show each was refused, not left to wait for a leader (a forward
                // waits 2 s, then fails with another code); the bound is loose, for a test task
                // that a full run resumes seconds late.
                #expect(asked.duration(to: .now) < .seconds(20))
                #expect(NodeAPI.status(for: .removed) == .gone)
                // A watch asked of it now is refused before it starts (410, not a stream).
                #expect { try removed.checkWatchStart(1) } throws: { ($0 as? NodeError)?.code == .removed }
            }
        }
    }

    @Test("a watch on a member restarted after its removal ends with the same error")
    func watchOnAMemberRemovedBeforeItStartedEnds() async throws {
        let dir = TemporaryDirectory()
        let removal = Mutex<(id: String, peers: [String: String])?>(nil)
        try await withThreeMembers(dir) { nodes, peers in
            let leader = try #require(nodes.first { $0.raft!.isLeader })
            let removed = try #require(nodes.first { !$0.raft!.isLeader })
            try await Self.remove(removed.configuration.nodeID, by: leader)
            // The farewells bring its log up to its removal.
            #expect(try await waitUntil(timeout: .seconds(10)) { removed.raft!.wasRemoved })
            removal.withLock { $0 = (removed.configuration.nodeID, peers) }
        }
        let (id, peers) = try #require(removal.withLock { $0 })
        // On a port of its own: its old one may not be free again yet (nothing needs it here).
        let again = try regionMember(id, in: dir, port: try closedPort(), peers: peers)
        try await withThrowingTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                try await again.run()
                return nil
            }
            Self.watch(again, in: &group)
            defer { group.cancelAll() }
            let ended = try await group.next() ?? nil
            let error = try #require(ended as? NodeError, "\(String(describing: ended))")
            #expect(error.message.contains("\(id) was removed from the region"), "\(error)")
        }
    }

    @Test(
        "a member counts as once a member only when a membership its log holds names it (a joiner restarted early does not)"
    )
    func onceAMemberIsReadFromTheLog() {
        let three = RaftMembership(voters: ["n1": "h:1", "n2": "h:2", "n3": "h:3"])
        let withoutN1 = RaftMembership(voters: ["n2": "h:2", "n3": "h:3"])
        let entries = [
            LogEntry(index: 1, term: 1, kind: .membership, payload: three.encoded()),
            LogEntry(index: 2, term: 1, kind: .noop, payload: []),
            LogEntry(index: 3, term: 1, kind: .membership, payload: withoutN1.encoded()),
        ]
        #expect(RaftConsensus.anyMembership(RaftMembership(), entries, holds: "n1"), "removed at 3")
        #expect(!RaftConsensus.anyMembership(RaftMembership(), entries, holds: "n4"), "a joiner not added yet")
        #expect(RaftConsensus.anyMembership(three, [], holds: "n2"), "in the snapshot's")
        #expect(
            !RaftConsensus.anyMembership(withoutN1, Array(entries.suffix(1)), holds: "n1"), "compacted away: unknown")
    }
}
