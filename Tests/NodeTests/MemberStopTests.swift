import Foundation
import TestSupport
import Testing

@testable import Node

/// What a region member lets go of when it stops: its replication port and its log, at once,
/// however its loops end.
@Suite struct MemberStopTests {
    @Test(
        "a member stopped at any moment after it listens lets go of its replication port and its log: started again at once, it opens"
    )
    func stopLetsGoOfThePortAndTheLog() async throws {
        let dir = TemporaryDirectory()
        let port = try closedPort()
        let peers = [
            "n1": "127.0.0.1:\(port)", "n2": "127.0.0.1:\(try closedPort())", "n3": "127.0.0.1:\(try closedPort())",
        ]
        // A cancellation ends the member's loops with an error as often as not, depending on which
        // loop ends first; the replication port was closed only when none threw, and the listener
        // left open held the member and its log for as long as the process ran (a test that
        // started the member again waited for the log in vain). Twenty stops, at varied moments.
        for round in 1...20 {
            // Opening the node again needs the last one's log closed: it waits up to 10 s, then throws.
            let node = try await openingAgain { try regionMember("n1", in: dir, port: port, peers: peers) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await node.run() }
                try await node.waitUntilListening()
                try await Task.sleep(for: .milliseconds(round % 5 * 7))
                group.cancelAll()
                try await group.waitForAll()
            }
            #expect(canBind(port), "round \(round): the replication port still listens after the member stopped")
        }
    }

    @Test(
        "a member that cannot take its replication port stops, and lets go of its log: started again on a free port, it opens"
    )
    func aFailedListenLetsGoOfTheLog() async throws {
        let dir = TemporaryDirectory()
        let taken = try silentListener()
        defer { close(taken.socket) }
        let peers = [
            "n1": "127.0.0.1:\(taken.port)", "n2": "127.0.0.1:\(try closedPort())",
            "n3": "127.0.0.1:\(try closedPort())",
        ]
        // In a scope of its own: the node (and its hold on the data directory) ends with it.
        do {
            let node = try regionMember("n1", in: dir, port: taken.port, peers: peers)
            await #expect {
                try await node.run()
            } throws: { "\($0)".contains("127.0.0.1:\(taken.port)") }
        }
        // Nothing may keep the member (its receivers) once its listen failed: its log reopens at
        // once (a store still open makes the next one wait 10 s, then throw).
        let port = try closedPort()
        var moved = peers
        moved["n1"] = "127.0.0.1:\(port)"
        _ = try await openingAgain { try regionMember("n1", in: dir, port: port, peers: moved) }
    }
}
