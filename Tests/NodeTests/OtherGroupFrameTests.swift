import Logging
import Replication
import TestSupport
import Testing

@testable import Node

@Suite struct OtherGroupFrameTests {
    @Test("a frame for a Raft group the member does not run is dropped and said, once a minute")
    func framesOfAnotherGroupAreSaid() async throws {
        let dir = TemporaryDirectory()
        let said = RecordedLog()
        let port = try closedPort()
        let node = try regionMember("n1", in: dir, port: port, peers: ["n1": "127.0.0.1:\(port)"], logger: said.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            defer { group.cancelAll() }
            try #require(try await waitUntil { node.raft!.isLeader })
            let term = node.raft!.status.term
            // An answer, of a later term: a heartbeat (which leads) from a connection without a
            // hello was dropped before its group was looked at once the region's id had applied,
            // which raced with this test's frames.
            for _ in 0..<2 {
                let frame = RaftFrame(
                    group: "global",
                    message: RaftMessage(from: "g2", to: "n1", term: term + 5, body: .heartbeatResponse(readContext: 0))
                )
                try sendRaw(frame.encoded(), port: port)
            }
            #expect(try await waitUntil { said.contains("dropped a frame for group global from g2") }, "\(said.lines)")
            #expect(said.lines.filter { $0.contains("dropped a frame for group") }.count == 1)
            #expect(node.raft!.status.term == term && node.raft!.isLeader)
        }
    }
}
