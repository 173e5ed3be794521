import Foundation
import Logging
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
        let ids = ["n1", "n2", "n3"]
        let ports = try ids.map { _ in try closedPort() }
        let peers = Dictionary(uniqueKeysWithValues: zip(ids, ports.map { "127.0.0.1:\($0)" }))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let nodes = try zip(ids, ports).map { id, port in
            var configuration = NodeConfiguration(dataDirectory: dir.file(id), nodeID: id, region: "eu", apiPort: 0)
            configuration.replication = ReplicationConfiguration(
                listenHost: "127.0.0.1", listenPort: port, peers: peers)
            return try Node(configuration: configuration, logger: logger)
        }
        // Three members in this process; no HTTP APIs run, so each says an address of its own.
        let apis = Dictionary(uniqueKeysWithValues: ids.map { ($0, "127.0.0.1:\(9_000 + ids.firstIndex(of: $0)!)") })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            for node in nodes { node.raft!.advertiseAPI(apis[node.configuration.nodeID]!) }
            let agreed = try await waitUntil {
                let leaders = Set(nodes.map { $0.raft!.status.leader })
                return leaders.count == 1 && leaders.first! != nil
            }
            try #require(agreed, "no leader all three agree on")
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
}
