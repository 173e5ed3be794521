import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

/// The region id every connection between members opens with (``ConnectionHello``): proposed
/// once by the first leader, the same on every member and on one that joins later, and the reason
/// a member of another region, with the same name and ids and a `--peer` pointing here by
/// mistake, is not heard.
@Suite struct RegionIDTests {
    @Test("a region gets one id, alike on every member and on a member that joins later")
    func oneIDForEveryMember() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            #expect(try await waitUntil { nodes.allSatisfy { $0.raft!.transport.regionID != nil } })
            let id = try #require(nodes[0].raft!.transport.regionID)
            for node in nodes {
                #expect(node.raft!.transport.regionID == id)
                // Named as it committed; the views (a follower applies in batches) follow.
                let written = node.log.lastIndex
                _ = try await node.waitUntilApplied(written)
                let viewed = try await node.views.pool.read { try ViewStore.regionID($0) }
                #expect(viewed == id)
            }
            let status = await nodes[1].clusterStatus(timeout: .zero)
            #expect(status["region_id"] == .string(RegionIdentified.described(id)))
            let leader = try leader(of: nodes)
            let port = try closedPort()
            let joiner = try regionMember("n4", in: dir, port: port, peers: peers, join: true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await joiner.run() }
                defer { group.cancelAll() }
                #expect(joiner.raft!.transport.regionID == nil)
                // Not added yet, it has no one to confirm a read with: said at once.
                let early = await #expect(throws: NodeError.self) { _ = try await joiner.raft!.readIndex() }
                #expect(
                    early?.message.contains("n4 is not a member of the region as far as it knows") == true,
                    "\(String(describing: early))")
                _ = try await leader.raft!.changeMembership(.addLearner(id: "n4", address: "127.0.0.1:\(port)"))
                #expect(try await waitUntil { joiner.raft!.transport.regionID == id })
                // And it is heard with it: a write reaches it.
                _ = try await leader.submit(NodeIntentTests.host("h1"))
                let written = leader.log.lastIndex
                #expect(try await waitUntil { joiner.applied.value >= written })
            }
        }
    }

    @Test(
        "the members of another region with the same ids and name, one of whose --peer points here, are not heard: their leader's entries never reach this region"
    )
    func otherRegionIsNotHeard() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            #expect(try await waitUntil { nodes.allSatisfy { $0.raft!.transport.regionID != nil } })
            let leader = try leader(of: nodes)
            let n2 = nodes[1]
            // Staging's n1 and n3, whose membership has its n2 at this region's n2 by mistake.
            let (p1, p3) = (try closedPort(), try closedPort())
            let staging = [
                "n1": "127.0.0.1:\(p1)", "n2": try #require(peers["n2"]), "n3": "127.0.0.1:\(p3)",
            ]
            let others = [
                try regionMember("n1", in: dir, name: "staging-n1", port: p1, peers: staging, electionTicks: 100),
                try regionMember("n3", in: dir, name: "staging-n3", port: p3, peers: staging, electionTicks: 100),
            ]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in others { group.addTask { try await node.run() } }
                defer { group.cancelAll() }
                // Staging never gets its id (its n2 never answers as one of its members), so
                // its connections name none: heard, but none of its leader's frames taken.
                let led = try await waitUntil {
                    others.contains { $0.raft!.isLeader } && others.allSatisfy { $0.raft!.status.leader != nil }
                }
                try #require(led, "staging elected no leader")
                // Its terms run ahead of this region's, as they would after some elections there.
                for _ in 0..<10 {
                    let stagingTerm = others.map { $0.raft!.status.term }.max() ?? 0
                    if stagingTerm > leader.raft!.status.term + 1 { break }
                    let next = try #require(others.first { !$0.raft!.isLeader })
                    #expect(try await handLeadership(to: next, among: others))
                }
                let stagingLeader = try #require(others.first { $0.raft!.isLeader })
                try #require(stagingLeader.raft!.status.term > leader.raft!.status.term)
                _ = try await stagingLeader.submit(NodeIntentTests.host("stranger"))
                _ = try await leader.submit(NodeIntentTests.host("h1"))
                try await Task.sleep(for: .milliseconds(500))
                _ = try await leader.submit(NodeIntentTests.host("h2"))
                let written = leader.log.lastIndex
                #expect(try await waitUntil { n2.applied.value >= written })
                #expect(try await rows(n2, "SELECT name FROM hosts ORDER BY name") == #"[["h1"],["h2"]]"#)
                #expect(n2.raft!.status.leader == leader.configuration.nodeID)
                #expect(n2.raft!.status.term < stagingLeader.raft!.status.term)
                #expect(try await rows(stagingLeader, "SELECT name FROM hosts") == #"[["stranger"]]"#)
            }
        }
    }

    @Test(
        "a follower that holds committed entries back names the region's id as they commit, and can be handed the leadership"
    )
    func heldBackFollowerNamesTheID() async throws {
        let dir = TemporaryDirectory()
        let ports = try (1...3).map { _ in try closedPort() }
        let peers = Dictionary(uniqueKeysWithValues: zip(["n1", "n2", "n3"], ports.map { "127.0.0.1:\($0)" }))
        // n3 holds committed entries back, and waits ten times as long as the others before it
        // campaigns: n1 or n2 leads, and proposes the id.
        let nodes = try zip(["n1", "n2", "n3"], ports).map { id, port in
            try regionMember(
                id, in: dir, port: port, peers: peers, applyDelay: id == "n3" ? .seconds(60) : nil,
                electionTicks: id == "n3" ? 100 : nil)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            let (n1, n3) = (nodes[0], nodes[2])
            #expect(try await waitUntil { nodes.allSatisfy { $0.raft!.transport.regionID != nil } })
            let id = try #require(n1.raft!.transport.regionID)
            #expect(n3.raft!.transport.regionID == id)
            try #require(!n3.raft!.isLeader)
            // n3's views hold no id yet: it names the one its committed entries hold.
            #expect(try await n3.views.pool.read { try ViewStore.regionID($0) } == nil, "n3 applied its entries")
            #expect(try await handLeadership(to: n3, among: nodes))
            _ = try await n3.submit(NodeIntentTests.host("h1"))
        }
    }

    @Test(
        "a member that joins with a --peer list older than the leader learns where the leader is from its hello, and catches up"
    )
    func joinerLearnsTheLeadersAddress() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            #expect(try await waitUntil { nodes.allSatisfy { $0.raft!.namesRegion } })
            let first = try #require(nodes.first { $0.raft!.isLeader })
            // n4 joins, is promoted, and leads.
            let p4 = try closedPort()
            let n4 = try regionMember("n4", in: dir, port: p4, peers: peers, join: true)
            let p5 = try closedPort()
            // n5 joins with the founders' addresses only, as the README's --peer list has them.
            let n5 = try regionMember("n5", in: dir, port: p5, peers: peers, join: true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await n4.run() }
                defer { group.cancelAll() }
                _ = try await first.raft!.changeMembership(.addLearner(id: "n4", address: "127.0.0.1:\(p4)"))
                #expect(try await waitUntil { n4.applied.value >= first.log.lastIndex && n4.raft!.namesRegion })
                _ = try await first.raft!.changeMembership(.promote(id: "n4"))
                try #require(try await handLeadership(to: n4, among: nodes + [n4]))
                group.addTask { try await n5.run() }
                _ = try await n4.raft!.changeMembership(.addLearner(id: "n5", address: "127.0.0.1:\(p5)"))
                _ = try await n4.submit(NodeIntentTests.host("h1"))
                let written = n4.log.lastIndex
                #expect(try await waitUntil { n5.applied.value >= written }, "n5 never caught up")
            }
        }
    }
}
