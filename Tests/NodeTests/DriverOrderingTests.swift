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
    /// What the test saw: the answers n2 got to its vote request, and how n1's run ended.
    final class Observed: Sendable {
        let granted = Mutex<[Bool]>([])
        /// nil while n1 runs; then the error it stopped on ("" when it returned).
        let runEnded = Mutex<String?>(nil)
    }

    /// Runs member n1 of a region n1, n2, n3 whose n2 is this test, and asks it for its vote in
    /// term 5 (with `faulty`, after arming its log's fsync to fail once n1 has written its first
    /// entry), again every 100 ms (n1 may not listen yet), until `done` holds (at most 30 s).
    func askForVote(faulty: Bool, until done: @escaping @Sendable (Observed) -> Bool) async throws -> Observed {
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
        let observed = Observed()
        let n2 = RaftTransport(logger: logger)
        _ = try await n2.listen(host: "127.0.0.1", port: ports[1]) { frame in
            if case .message(let message) = frame.content, case .voteResponse(let granted) = message.body {
                observed.granted.withLock { $0.append(granted) }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await member.run()
                    observed.runEnded.withLock { $0 = "" }
                } catch {
                    observed.runEnded.withLock { $0 = "\(error)" }
                }
            }
            defer { group.cancelAll() }
            #expect(try await waitUntil { log.lastIndex == 1 }, "n1 wrote its first entry")
            if faulty { faults.arm(.journalSync, times: 1_000) }
            let ask = RaftMessage(
                from: "n2", to: "n1", term: 5, body: .vote(lastIndex: 100, lastTerm: 4, transfer: false))
            let deadline = ContinuousClock.now + .seconds(30)
            while !done(observed), ContinuousClock.now < deadline {
                n2.send(RaftFrame(group: "region", message: ask), to: peers["n1"]!)
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        // A vote n1 sent just before it stopped may still be on its way: n2 listens a while longer.
        try await Task.sleep(for: .milliseconds(500))
        await n2.close()
        return observed
    }

    @Test("a member grants its vote once the vote is on disk")
    func voteSentWhenDurable() async throws {
        let observed = try await askForVote(faulty: false) { $0.granted.withLock { $0.contains(true) } }
        #expect(observed.granted.withLock { $0.contains(true) }, "n1 never granted its vote")
    }

    @Test("a member whose log cannot make its vote durable never sends it, and stops")
    func voteNeverSentWhenNotDurable() async throws {
        let observed = try await askForVote(faulty: true) { $0.runEnded.withLock { $0 != nil } }
        let votes = observed.granted.withLock { $0 }
        let ended = observed.runEnded.withLock { $0 }
        #expect(!votes.contains(true), "n1 granted a vote it had not made durable: \(votes)")
        #expect(ended != nil && ended != "", "n1 went on after its log write failed: \(ended ?? "still running")")
    }
}
