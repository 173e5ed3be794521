import Foundation
import Logging
import Replication
import Store
import Synchronization
import TestSupport
import Testing

@testable import Node

/// A leader's word that a member was removed, kept in `DATA/log/region.removal-notice`: a member
/// removed while away, started again, does not campaign and refuses intents from its start.
@Suite struct RemovalNoticeTests {
    static let logger = Logger(label: "test")

    /// Runs `node` until its log holds the region's first membership, then stops it.
    static func runOnce(_ node: Node) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            defer { group.cancelAll() }
            let written = try await waitUntil(timeout: .seconds(30)) { node.log.lastIndex >= 1 }
            #expect(written)
        }
    }

    @Test(
        "a member started again with a kept removal notice refuses intents at once and never campaigns; without one it campaigns"
    )
    func keptNoticeHoldsAtStart() async throws {
        for kept in [true, false] {
            let dir = TemporaryDirectory()
            let ports = try (0..<3).map { _ in try closedPort() }
            let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
            // n2 and n3 never start: n1 alone campaigns (pre-vote) after its election timeout.
            try await Self.runOnce(try regionMember("n1", in: dir, port: ports[0], peers: peers))
            if kept { RaftConsensus.keepRemovalNotice(9, in: dir.file("n1/log"), group: "region", logger: Self.logger) }
            let node = try regionMember("n1", in: dir, port: try closedPort(), peers: peers)
            #expect(node.raft!.status.toldRemovedAt == (kept ? 9 : nil))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await node.run() }
                defer { group.cancelAll() }
                let refused = await #expect(throws: NodeError.self) {
                    try await node.submit(
                        .addHost(HostAdded(name: "h1", region: "eu", cpus: 1, memoryBytes: 1 << 30, labels: [:])))
                }
                #expect((refused?.code == .removed) == kept, "kept \(kept): \(String(describing: refused))")
                // Twice the longest election timeout (600 ms) when kept; as long as a loaded
                // machine needs when not.
                let campaigned = try await waitUntil(timeout: .seconds(kept ? 3 : 30)) {
                    node.raft!.status.role != .follower || node.raft!.status.term > 1
                }
                #expect(
                    campaigned == !kept, "kept \(kept): \(node.raft!.status.role) in term \(node.raft!.status.term)")
            }
        }
    }

    @Test("a member a leader tells it was removed keeps the notice, and has it again when started again")
    func toldMemberKeepsTheNotice() async throws {
        let dir = TemporaryDirectory()
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        try await Self.runOnce(try regionMember("n1", in: dir, port: ports[0], peers: peers))
        let notice = dir.file("n1/log/region.removal-notice")
        // In a scope of its own: the node (and its hold on the data directory) ends with it.
        do {
            let node = try regionMember("n1", in: dir, port: try closedPort(), peers: peers)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await node.run() }
                defer { group.cancelAll() }
                // What the transport does with a leader's `removed` message (type 16).
                let raft = try #require(node.raft)
                raft.state.withLock { $0.step(RaftMessage(from: "n2", to: "n1", term: 1, body: .removed(index: 9))) }
                raft.wake.yield()
                let kept = try await waitUntil(timeout: .seconds(30)) {
                    (try? String(contentsOfFile: notice, encoding: .utf8)) == "9\n"
                }
                #expect(kept)
                #expect(raft.wasRemoved)
            }
        }
        let again = try regionMember("n1", in: dir, port: try closedPort(), peers: peers)
        #expect(again.raft!.status.toldRemovedAt == 9 && again.raft!.wasRemoved)
    }

    @Test(
        "a leader asked to remove itself hands over; the member keeps the notice of its removal, and started again is removed at once, though the commit index it saved may stop short of it"
    )
    func leaderRemovingItselfKeepsTheNotice() async throws {
        let dir = TemporaryDirectory()
        let seen = Mutex<(id: String, peers: [String: String])>(("", [:]))
        try await withThreeMembers(dir) { nodes, peers in
            let leading = try leader(of: nodes)
            let id = leading.configuration.nodeID
            seen.withLock { $0 = (id, peers) }
            // It hands its leadership over, then refuses as a member that does not lead (the API
            // sends the change on to the next leader; here the test does).
            let refusal = await #expect(throws: NodeError.self) { _ = try await leading.changeCluster(.remove(id: id)) }
            #expect(refusal?.message.contains("\(id) is not the leader") == true, "\(String(describing: refusal))")
            let next = try #require(
                try await waitForValue(within: .seconds(30)) {
                    nodes.first { $0.raft!.isLeader && $0.configuration.nodeID != id }
                })
            _ = try await next.changeCluster(.remove(id: id))
            let kept = try await waitUntil(timeout: .seconds(30)) {
                FileManager.default.fileExists(atPath: dir.file("\(id)/log/region.removal-notice"))
            }
            #expect(kept, "\(id) kept no notice of its own removal")
        }
        let (id, peers) = seen.withLock { $0 }
        let again = try regionMember(id, in: dir, port: try closedPort(), peers: peers)
        #expect(again.raft!.wasRemoved, "\(id): \(again.raft!.status)")
        let refused = await #expect(throws: NodeError.self) {
            try await again.submit(
                .addHost(HostAdded(name: "h1", region: "eu", cpus: 1, memoryBytes: 1 << 30, labels: [:])))
        }
        #expect(refused?.code == .removed, "\(String(describing: refused))")
    }

    @Test("a notice beside a log that never held the member (a new region's first start) is not its, and goes")
    func noticeOfAnotherLog() throws {
        let dir = TemporaryDirectory()
        let port = try closedPort()
        try FileManager.default.createDirectory(atPath: dir.file("n1/log"), withIntermediateDirectories: true)
        RaftConsensus.keepRemovalNotice(9, in: dir.file("n1/log"), group: "region", logger: Self.logger)
        let node = try regionMember("n1", in: dir, port: port, peers: ["n1": "127.0.0.1:\(port)"])
        #expect(node.raft!.status.toldRemovedAt == nil)
        #expect(!node.raft!.wasRemoved)
        #expect(!FileManager.default.fileExists(atPath: dir.file("n1/log/region.removal-notice")))
    }

    @Test("a notice file that holds no log index is ignored")
    func unreadableNotice() throws {
        let dir = TemporaryDirectory()
        func read() -> UInt64? {
            RaftConsensus.removalNotice(in: dir.path, group: "region", logger: Self.logger, forThisLog: true)
        }
        #expect(read() == nil)
        RaftConsensus.keepRemovalNotice(42, in: dir.path, group: "region", logger: Self.logger)
        #expect(read() == 42)
        try Data("forty-two".utf8).write(to: URL(fileURLWithPath: dir.file("region.removal-notice")))
        #expect(read() == nil)
    }
}
