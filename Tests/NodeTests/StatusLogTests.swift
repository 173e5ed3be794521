import Foundation
import Logging
import TestSupport
import Testing

@testable import Node

@Suite struct StatusLogTests {
    @Test("a member that cannot reach the others says it campaigns once, not at every election timeout")
    func campaigningIsSaidOnce() async throws {
        let dir = TemporaryDirectory()
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        let said = RecordedLog()
        // n2 and n3 never start: n1 campaigns (pre-votes, its term unchanged) every 100-200 ms.
        let node = try regionMember("n1", in: dir, port: ports[0], peers: peers, electionTicks: 10, logger: said.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            defer { group.cancelAll() }
            let campaigns = { said.lines.filter { $0.contains("n1 is preCandidate in term") }.count }
            #expect(try await waitUntil(timeout: .seconds(30)) { campaigns() >= 1 })
            // Ten election timeouts or more.
            try await Task.sleep(for: .seconds(2))
            #expect(campaigns() == 1, "\(said.lines.filter { $0.contains("preCandidate") })")
        }
    }
}
