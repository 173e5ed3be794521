import Foundation
import Logging
import Replication
import Synchronization
import TestSupport
import Testing

@testable import Node
@testable import Store

/// A `--consistency leader` read asks the leader for its commit index. A leader just elected still
/// has the commit index it had as a follower, which may be behind what the last leader
/// acknowledged, until an entry of its own term commits (Raft §8): `RaftConsensus.leaderCommitIndex`
/// waits for that, and refuses if it does not come in time. This drives the product's driver: n1 of
/// a region n1, n2, n3 is elected with the vote of n2, played by the test, which then holds back
/// its acknowledgement of n1's first entry.
@Suite struct LeaderReadTests {
    /// What the test's n2 does with n1's frames: grants pre-votes and votes, answers heartbeats,
    /// and acknowledges appends once `acknowledge()` is called.
    final class FakeFollower: Sendable {
        let acknowledging = Atomic<Bool>(false)
        let appendsSeen = Atomic<Int>(0)
        /// The last append n1 sent while n2 held back: (term, the index its acknowledgement names).
        let heldBack = Mutex<(term: UInt64, index: UInt64)?>(nil)
        let transport: RaftTransport
        let leaderAddress: String

        init(transport: RaftTransport, leaderAddress: String) {
            self.transport = transport
            self.leaderAddress = leaderAddress
        }

        func receive(_ frame: RaftFrame) {
            guard case .message(let message) = frame.content else { return }
            let answer: RaftMessage.Body
            switch message.body {
            case .preVote: answer = .preVoteResponse(granted: true)
            case .vote: answer = .voteResponse(granted: true)
            case .heartbeat(_, let context): answer = .heartbeatResponse(readContext: context)
            case .append(let previous, _, let entries, _):
                appendsSeen.add(1, ordering: .relaxed)
                let index = previous + UInt64(entries.count)
                guard acknowledging.load(ordering: .relaxed) else {
                    heldBack.withLock { $0 = (message.term, index) }
                    return
                }
                answer = .appendResponse(accepted: true, index: index, hintIndex: 0, hintTerm: 0)
            default: return
            }
            reply(answer, term: message.term)
        }

        /// From now on acknowledges every append, starting with the one held back.
        func acknowledge() {
            acknowledging.store(true, ordering: .relaxed)
            if let (term, index) = heldBack.withLock({ $0 }) {
                reply(.appendResponse(accepted: true, index: index, hintIndex: 0, hintTerm: 0), term: term)
            }
        }

        private func reply(_ body: RaftMessage.Body, term: UInt64) {
            let message = RaftMessage(from: "n2", to: "n1", term: term, body: body)
            transport.send(RaftFrame(group: "region", message: message), to: leaderAddress)
        }
    }

    @Test("a leader just elected answers a leader read only once an entry of its term has committed")
    func leaderReadWaitsForFirstCommit() async throws {
        let dir = TemporaryDirectory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let log = try LogStore(path: dir.file("log"))
        let snapshots = try ViewSnapshots(
            directory: dir.file("snapshots"), views: try ViewStore(path: dir.file("views.sqlite")),
            applied: IndexWatermark(), logger: logger)
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        var configuration = ReplicationConfiguration(listenHost: "127.0.0.1", listenPort: ports[0], peers: peers)
        // Room for a loaded machine: the read's wait, and check-quorum's (n2 answers heartbeats,
        // but a leader that hears nothing for an election timeout steps down).
        configuration.leaderAnswerTimeout = .seconds(3)
        configuration.raft = RaftConfiguration(electionTicks: 100, heartbeatTicks: 3)
        let member = try RaftConsensus(
            nodeID: "n1", log: log, snapshots: snapshots, snapshotEvery: 10_000, configuration: configuration,
            logger: logger)
        let n2 = FakeFollower(transport: RaftTransport(logger: logger), leaderAddress: peers["n1"]!)
        _ = try await n2.transport.listen(host: "127.0.0.1", port: ports[1]) { n2.receive($0) }

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await member.run() }
            defer { group.cancelAll() }
            // (Generous: under a full parallel test run the election once took longer than 10 s.)
            #expect(try await eventually(.seconds(30)) { member.isLeader }, "n1 was elected with n2's vote")
            #expect(try await eventually { n2.appendsSeen.load(ordering: .relaxed) > 0 }, "n1 sent its first entry")

            // Its first entry is not acknowledged: the read waits its second, then is refused.
            let asked = ContinuousClock.now
            let refusal = await #expect(throws: NodeError.self) { _ = try await member.leaderCommitIndex() }
            #expect(ContinuousClock.now - asked >= .seconds(3), "the read waited for the first commit")
            #expect(refusal?.code == .unavailable, "\(String(describing: refusal))")
            #expect(refusal?.message.contains("just elected") == true, "\(String(describing: refusal))")
            #expect(member.isLeader, "n1 still leads: n2 answers its heartbeats")

            // A read asked before n2 acknowledges is answered once it has, within its wait, with a
            // commit index that covers n1's own entry.
            async let read = member.leaderCommitIndex()
            try await Task.sleep(for: .milliseconds(100))
            n2.acknowledge()
            let index = try await read
            #expect(index == log.lastIndex, "the read's index is n1's first entry: \(String(describing: index))")
        }
        await n2.transport.close()
    }

    @Test("a leader read on a member that knows no leader says so, instead of sending the reader to 'the leader'")
    func leaderReadWithoutALeader() async throws {
        let dir = TemporaryDirectory()
        var configuration = NodeConfiguration(dataDirectory: dir.file("n1"), nodeID: "n1", region: "eu", apiPort: 0)
        configuration.replication = ReplicationConfiguration(
            listenHost: "127.0.0.1", listenPort: try closedPort(),
            peers: ["n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"])
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let node = try Node(configuration: configuration, logger: logger)
        let refusal = await #expect(throws: NodeError.self) { try await node.waitForViews(.leader) }
        #expect(refusal?.message.contains("knows none") == true, "\(String(describing: refusal))")
        #expect(refusal?.leaderAPI == nil)
    }
}
