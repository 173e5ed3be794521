import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

/// The region id every connection between members opens with (``ConnectionHello``): recorded by
/// the members of a new region, learned by one that joins, and the reason a member of another
/// region, with the same ids and a `--peer` pointing here by mistake, is not heard.
@Suite struct RegionIDTests {
    @Test("a region's members record the id of its first membership; a member that joins learns it and records it")
    func recordedAndLearned() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            let first = try nodes[0].log.entries(in: 1...1)[0]
            let id = ConnectionHello.regionID(ofFirstMembership: first.payload)
            for node in nodes {
                #expect(node.raft!.regionIDAtStart == id)
                #expect(try DataDirectoryIdentity.recordedRegionID(in: node.configuration.dataDirectory) == id)
            }
            let leaderID = try #require(nodes[0].raft!.status.leader)
            let leader = try #require(nodes.first { $0.configuration.nodeID == leaderID })
            #expect(await nodes[1].clusterStatus(timeout: .zero)["region_id"] == .string(ConnectionHello.described(id)))
            let port = try closedPort()
            let joiner = try member("n4", in: dir, port: port, peers: peers, join: true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await joiner.run() }
                defer { group.cancelAll() }
                #expect(joiner.raft!.regionIDAtStart == nil)
                _ = try await leader.raft!.changeMembership(.addLearner(id: "n4", address: "127.0.0.1:\(port)"))
                #expect(try await waitUntil { joiner.raft!.transport.regionID == id })
                #expect(
                    try await waitUntil { (try? DataDirectoryIdentity.recordedRegionID(in: dir.file("n4"))) == id })
            }
        }
    }

    @Test(
        "the members of another region with the same ids and name, one of whose --peer points here, are not heard: their leader's entries never reach this region"
    )
    func otherRegionIsNotHeard() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            let leaderID = try #require(nodes[0].raft!.status.leader)
            let leader = try #require(nodes.first { $0.configuration.nodeID == leaderID })
            let n2 = nodes[1]
            // Staging's n1 and n3, whose membership has its n2 at this region's n2 by mistake.
            let (p1, p3) = (try closedPort(), try closedPort())
            let staging = [
                "n1": "127.0.0.1:\(p1)", "n2": try #require(peers["n2"]), "n3": "127.0.0.1:\(p3)",
            ]
            let others = [
                try member("n1", in: dir, name: "staging-n1", port: p1, peers: staging),
                try member("n3", in: dir, name: "staging-n3", port: p3, peers: staging),
            ]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in others { group.addTask { try await node.run() } }
                defer { group.cancelAll() }
                let led = try await waitUntil {
                    others.contains { $0.raft!.isLeader } && others.allSatisfy { $0.raft!.status.leader != nil }
                }
                try #require(led, "staging elected no leader")
                // Its terms run ahead of this region's, as they would after some elections there.
                for _ in 0..<3 {
                    let current = try #require(others.first { $0.raft!.isLeader })
                    let next = try #require(others.first { !$0.raft!.isLeader })
                    _ = try await current.raft!.moveLeadership(to: next.configuration.nodeID, timeout: .seconds(5))
                }
                let stagingLeader = try #require(others.first { $0.raft!.isLeader })
                #expect(stagingLeader.raft!.status.term > leader.raft!.status.term)
                _ = try await stagingLeader.submit(NodeIntentTests.host("stranger"))
                _ = try await leader.submit(NodeIntentTests.host("h1"))
                try await Task.sleep(for: .milliseconds(500))
                _ = try await leader.submit(NodeIntentTests.host("h2"))
                let written = leader.log.lastIndex
                #expect(try await waitUntil { n2.applied.value >= written })
                #expect(try await rows(n2, "SELECT name FROM hosts ORDER BY name") == #"[["h1"],["h2"]]"#)
                #expect(n2.raft!.status.leader == leaderID)
                #expect(n2.raft!.status.term < stagingLeader.raft!.status.term)
                #expect(try await rows(stagingLeader, "SELECT name FROM hosts") == #"[["stranger"]]"#)
            }
        }
    }

    @Test("a start whose directory records another region id than its log's first membership gives is refused")
    func recordedIDMustMatchTheLog() throws {
        let membership = RaftMembership(voters: ["n1": "127.0.0.1:7101", "n2": "127.0.0.1:7102"])
        let first = LogEntry(index: 1, term: 1, kind: .membership, payload: membership.encoded())
        let id = ConnectionHello.regionID(ofFirstMembership: first.payload)
        #expect(try RaftConsensus.regionID(first: first, recorded: nil) == id)
        #expect(try RaftConsensus.regionID(first: first, recorded: id) == id)
        // A log compacted past its first entry: the recorded id, or none.
        let later = LogEntry(index: 7, term: 2, kind: .membership, payload: membership.encoded())
        #expect(try RaftConsensus.regionID(first: later, recorded: 5) == 5)
        #expect(try RaftConsensus.regionID(first: later, recorded: nil) == nil)
        let refusal = #expect(throws: NodeError.self) { try RaftConsensus.regionID(first: first, recorded: id &+ 1) }
        #expect(refusal?.message.contains("took the id of another region's member") == true)
    }

    /// A member of region eu listening on `port` of loopback, in `dir`'s directory `name` (its id by default).
    func member(
        _ id: String, in dir: TemporaryDirectory, name: String? = nil, port: Int, peers: [String: String],
        join: Bool = false
    ) throws -> Node {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = NodeConfiguration(
            dataDirectory: dir.file(name ?? id), nodeID: id, region: "eu", apiPort: 0)
        configuration.replication = ReplicationConfiguration(
            listenHost: "127.0.0.1", listenPort: port, peers: peers, join: join)
        return try Node(configuration: configuration, logger: logger)
    }
}
