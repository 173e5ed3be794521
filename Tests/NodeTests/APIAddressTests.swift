import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct APIAddressTests {
    @Test(
        "a member that lost the leader's API address asks for it as soon as a refusal needs it, and the next refusal names it"
    )
    func lostAddressIsAskedFor() async throws {
        let dir = TemporaryDirectory()
        // Three members in this process; no HTTP APIs run, so each says an address of its own.
        let apis = ["n1": "127.0.0.1:9000", "n2": "127.0.0.1:9001", "n3": "127.0.0.1:9002"]
        try await withThreeMembers(dir) { nodes, _ in
            for node in nodes { node.raft!.advertiseAPI(apis[node.configuration.nodeID]!) }
            let leader = nodes[0].raft!.status.leader!
            let follower = try #require(nodes.first { $0.configuration.nodeID != leader }).raft!
            try #require(try await waitUntil { follower.apiAddress(of: leader) == apis[leader] })

            // The address is lost (as a 103 sent while the connection was down would be): the
            // next refusal cannot name it, and asks for it.
            follower.apiAddresses.withLock { $0[leader] = nil }
            let refusal = follower.directions(to: leader)
            #expect(refusal.api == nil && refusal.text.contains("asked for it"), "\(refusal.text)")
            #expect(try await waitUntil { follower.apiAddress(of: leader) == apis[leader] })
            #expect(follower.directions(to: leader).api == apis[leader])
        }
    }

    @Test("a member that connects in is told again where this member's API listens, unasked")
    func addressIsRetoldOnConnection() async throws {
        let dir = TemporaryDirectory()
        let apis = ["n1": "127.0.0.1:9000", "n2": "127.0.0.1:9001", "n3": "127.0.0.1:9002"]
        try await withThreeMembers(dir) { nodes, peers in
            for node in nodes { node.raft!.advertiseAPI(apis[node.configuration.nodeID]!) }
            let leader = nodes[0].raft!.status.leader!
            let follower = try #require(nodes.first { $0.configuration.nodeID != leader }).raft!
            try #require(try await waitUntil { follower.apiAddress(of: leader) == apis[leader] })

            // The follower lost the address (a 103 dropped while the link was cut); a new
            // connection from it to the leader (as after the cut heals) has the leader tell it again.
            follower.apiAddresses.withLock { $0[leader] = nil }
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let transport = RaftTransport(logger: logger)
            // (Its own API address: a frame the leader takes without answering. A status question
            // would be answered with the address anyway.)
            let hello = MemberAPIAddress(from: follower.nodeID, to: leader, address: apis[follower.nodeID]!)
            transport.send(RaftFrame(group: follower.group, memberAPIAddress: hello), to: peers[leader]!)
            #expect(try await waitUntil { follower.apiAddress(of: leader) == apis[leader] })
            await transport.close()
        }
    }
}
