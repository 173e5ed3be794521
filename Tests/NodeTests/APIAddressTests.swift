import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct APIAddressTests {
    /// Each member says an API address of its own (no HTTP APIs run in these tests).
    static let apis = ["n1": "127.0.0.1:9000", "n2": "127.0.0.1:9001", "n3": "127.0.0.1:9002"]

    /// Three members in this process that told each other their API addresses; `body` gets a
    /// follower, which knows the leader's, the leader's id, and the replication addresses. The
    /// follower then forgets the leader's address (as when a 103 sent while a link was down is lost).
    func withFollowerThatLostTheLeadersAddress(
        _ body: @Sendable (RaftConsensus, String, [String: String]) async throws -> Void
    ) async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            for node in nodes { node.raft!.advertiseAPI(Self.apis[node.configuration.nodeID]!) }
            let leader = nodes[0].raft!.status.leader!
            let follower = try #require(nodes.first { $0.configuration.nodeID != leader }).raft!
            try #require(try await waitUntil { follower.apiAddress(of: leader) == Self.apis[leader] })
            follower.apiAddresses.withLock { $0[leader] = nil }
            try await body(follower, leader, peers)
        }
    }

    @Test(
        "a member that lost the leader's API address asks for it as soon as a refusal needs it, and the next refusal names it"
    )
    func lostAddressIsAskedFor() async throws {
        try await withFollowerThatLostTheLeadersAddress {
            (follower: RaftConsensus, leader: String, _: [String: String]) async throws in
            // The next refusal cannot name it, and asks for it.
            let refusal = follower.directions(to: leader)
            #expect(refusal.api == nil && refusal.text.contains("asked for it"), "\(refusal.text)")
            #expect(try await waitUntil { follower.apiAddress(of: leader) == Self.apis[leader] })
            #expect(follower.directions(to: leader).api == Self.apis[leader])
        }
    }

    @Test("a member that connects in is told again where this member's API listens, unasked")
    func addressIsRetoldOnConnection() async throws {
        try await withFollowerThatLostTheLeadersAddress {
            (follower: RaftConsensus, leader: String, peers: [String: String]) async throws in
            // A new connection from the follower to the leader (as after the cut heals) has the
            // leader tell it again. (Its own API address: a frame the leader takes without
            // answering. A status question would be answered with the address anyway.)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let transport = RaftTransport(logger: logger)
            let hello = MemberAPIAddress(from: follower.nodeID, to: leader, address: Self.apis[follower.nodeID]!)
            transport.send(RaftFrame(group: follower.group, memberAPIAddress: hello), to: peers[leader]!)
            #expect(try await waitUntil { follower.apiAddress(of: leader) == Self.apis[leader] })
            await transport.close()
        }
    }
}
