import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

/// A leader's word that a member was removed, kept in `DATA/log/removal-notice`: a member removed
/// while away, started again, does not campaign and refuses intents from its start.
@Suite struct RemovalNoticeTests {
    @Test(
        "a member started with a kept removal notice refuses intents at once and never campaigns; without one it campaigns"
    )
    func keptNoticeHoldsAtStart() async throws {
        for kept in [true, false] {
            let dir = TemporaryDirectory()
            let ports = try (0..<3).map { _ in try closedPort() }
            let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
            if kept {
                try FileManager.default.createDirectory(atPath: dir.file("n1/log"), withIntermediateDirectories: true)
                RaftConsensus.keepRemovalNotice(9, in: dir.file("n1/log"), logger: Logger(label: "test"))
            }
            // n2 and n3 never start: n1 alone would campaign (pre-vote) after its election timeout.
            let node = try regionMember("n1", in: dir, port: ports[0], peers: peers)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await node.run() }
                defer { group.cancelAll() }
                let refused = await #expect(throws: NodeError.self) {
                    try await node.submit(
                        .addHost(HostAdded(name: "h1", region: "eu", cpus: 1, memoryBytes: 1 << 30, labels: [:])))
                }
                #expect((refused?.code == .removed) == kept, "kept \(kept): \(String(describing: refused))")
                // Twice the longest election timeout (600 ms), and more on a loaded machine.
                let campaigned = try await waitUntil(timeout: .seconds(kept ? 3 : 30)) {
                    node.raft!.status.role != .follower || node.raft!.status.term > 1
                }
                #expect(
                    campaigned == !kept, "kept \(kept): \(node.raft!.status.role) in term \(node.raft!.status.term)")
            }
        }
    }

    @Test("a notice file that holds no log index is ignored")
    func unreadableNotice() throws {
        let dir = TemporaryDirectory()
        let logger = Logger(label: "test")
        #expect(RaftConsensus.readRemovalNotice(in: dir.path, logger: logger) == nil)
        RaftConsensus.keepRemovalNotice(42, in: dir.path, logger: logger)
        #expect(RaftConsensus.readRemovalNotice(in: dir.path, logger: logger) == 42)
        try Data("forty-two".utf8).write(to: URL(fileURLWithPath: dir.file(RaftConsensus.removalNoticeFile)))
        #expect(RaftConsensus.readRemovalNotice(in: dir.path, logger: logger) == nil)
    }
}
