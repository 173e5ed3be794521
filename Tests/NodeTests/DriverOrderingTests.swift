import Foundation
import Logging
import Replication
import Synchronization
import TestSupport
import Testing

@testable import Node
@testable import Store

/// The Raft driver sends a vote or an acknowledgement only once the state it promises is on disk
/// (`RaftConsensus.processReadies`). The simulator does not catch a driver that sends first (a
/// lost promise shows only when several faults line up; docs/replication.md), so this drives the
/// product's driver itself: a member asked for its vote, whose log cannot make that vote durable.
@Suite struct DriverOrderingTests {
    /// What n2 heard: the answers to its vote requests.
    final class Votes: Sendable {
        let granted = Mutex<[Bool]>([])
    }

    /// Runs member n1 of a region n1, n2, n3 whose n2 is this test, asks it for its vote in term 5
    /// (with `faults` armed once n1 has written its first entry), and returns the vote answers n1
    /// sent within `wait`, and how n1's run ended.
    func askForVote(faulty: Bool, wait: Duration) async throws -> (votes: [Bool], runError: (any Error)?) {
        let dir = TemporaryDirectory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let faults = LogFaults()
        let log = try LogStore(path: dir.file("log"), faults: faults)
        let snapshots = try ViewSnapshots(
            directory: dir.file("snapshots"), views: try ViewStore(path: dir.file("views.sqlite")),
            applied: IndexWatermark(), logger: logger)
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        let member = try RaftConsensus(
            nodeID: "n1", log: log, snapshots: snapshots, snapshotEvery: 10_000,
            configuration: ReplicationConfiguration(listenHost: "127.0.0.1", listenPort: ports[0], peers: peers),
            logger: logger)
        // n2: a transport of the test's own, keeping what n1 answers to votes.
        let votes = Votes()
        let n2 = RaftTransport(logger: logger)
        _ = try await n2.listen(host: "127.0.0.1", port: ports[1]) { frame in
            if case .message(let message) = frame.content, case .voteResponse(let granted) = message.body {
                votes.granted.withLock { $0.append(granted) }
            }
        }
        let runError = try await withThrowingTaskGroup(of: (any Error)?.self) { group in
            group.addTask {
                do {
                    try await member.run()
                    return nil
                } catch {
                    return error
                }
            }
            #expect(try await waitUntil { log.lastIndex == 1 }, "n1 wrote its first entry")
            if faulty { faults.arm(.journalSync, times: 1_000) }
            let ask = RaftMessage(
                from: "n2", to: "n1", term: 5, body: .vote(lastIndex: 100, lastTerm: 4, transfer: false))
            n2.send(RaftFrame(group: "region", message: ask), to: peers["n1"]!)
            try await Task.sleep(for: wait)
            // The error n1 stopped on by now, or the cancellation that stops it.
            group.cancelAll()
            return try await group.next() ?? nil
        }
        await n2.close()
        return (votes.granted.withLock { $0 }, runError)
    }

    @Test("a member grants its vote once the vote is on disk")
    func voteSentWhenDurable() async throws {
        let (votes, _) = try await askForVote(faulty: false, wait: .seconds(2))
        #expect(votes.contains(true), "n1 answered \(votes)")
    }

    @Test("a member whose log cannot make its vote durable never sends it, and stops")
    func voteNeverSentWhenNotDurable() async throws {
        let (votes, runError) = try await askForVote(faulty: true, wait: .seconds(1))
        #expect(!votes.contains(true), "n1 granted a vote it had not made durable: \(votes)")
        #expect(
            runError != nil && !(runError is CancellationError),
            "n1 went on after its log write failed: \(String(describing: runError))")
    }
}
