import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct ForwardedProposalTests {
    @Test(
        "a forwarded proposal that is no record is refused by the leader: it is never appended, and every member goes on applying"
    )
    func undecodableForwardIsRefused() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            let leaderID = nodes[0].raft!.status.leader!
            let leader = try #require(nodes.first { $0.configuration.nodeID == leaderID })
            let follower = try #require(nodes.first { $0.configuration.nodeID != leaderID }).configuration.nodeID
            // Sent as the follower would send it, by a transport of the test's own.
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let transport = RaftTransport(logger: logger)
            let garbage = RaftMessage(
                from: follower, to: leaderID, term: leader.raft!.status.term,
                body: .propose(id: 77, payloads: [[0xff, 0x00, 0x13]]))
            transport.send(RaftFrame(group: leader.raft!.group, message: garbage), to: peers[leaderID]!)
            let refused = try await waitUntil {
                metric(leader.metrics.render(node: leader), "dwcp_raft_forwards_refused_total") == 1
            }
            await transport.close()
            #expect(refused, "\(leader.metrics.render(node: leader))")

            // Nothing undecodable was appended, and every member applied all the leader committed.
            let written = leader.log.lastIndex
            for entry in try leader.log.entries(in: 1...written, maxCount: 1_000) where entry.kind == .record {
                #expect(throws: Never.self, "entry \(entry.index)") { try Record(decoding: entry.payload) }
            }
            #expect(try await waitUntil { nodes.allSatisfy { $0.applied.value >= leader.raft!.committed.value } })

            // The follower's own forward of such a payload is refused at once, not sent again
            // and again until its 2 s are up: the leader refused it once (counted, not timed: a
            // test task can resume seconds late at the start of a full run).
            let sender = try #require(nodes.first { $0.configuration.nodeID == follower })
            await #expect {
                _ = try await sender.consensus.propose([[0xff, 0x00, 0x13]], appliesOnce: false)
            } throws: { error in
                // (Unavailable, not invalid: to the member this reads as its own removal a moment
                // ago as well, and the intent may be good at another member.)
                (error as? NodeError)?.code == .unavailable && "\(error)".contains("it reads no such record")
            }
            // (The leader counts a refusal just after it sends it.)
            #expect(
                try await waitUntil {
                    metric(leader.metrics.render(node: leader), "dwcp_raft_forwards_refused_total") == 2
                },
                "\(leader.metrics.render(node: leader))")
        }
    }
}
