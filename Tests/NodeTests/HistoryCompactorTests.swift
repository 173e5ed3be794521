import Foundation
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct HistoryCompactorTests {
    @Test(
        "the leader compacts history older than its retention: old intents and events go, recent ones and each VM's latest placement stay"
    )
    func compactsOldHistory() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir, historyRetention: .seconds(3)) { node in
            _ = try await node.submit(NodeIntentTests.host("h1"), requestID: "old-host")
            _ = try await node.submit(NodeIntentTests.vm("web-1"), requestID: "old-vm")
            // Past the retention, the leader (a single node leads itself) compacts, in one record
            // or a few: the rows become old one after the other (on a loaded machine the second
            // intent may be answered after the first is compacted already).
            let history = "SELECT (SELECT count(*) FROM intents) + (SELECT count(*) FROM vm_events)"
            let deadline = ContinuousClock.now + .seconds(15)
            var left = try await rows(node, history)
            while left != "[[0]]", ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                left = try await rows(node, history)
            }
            #expect(left == "[[0]]", "history left after 15 s")
            #expect(try await rows(node, "SELECT history_compacted_index > 2 FROM dwcp_state") == "[[1]]")
            #expect(try await rows(node, "SELECT vm, host FROM placements") == #"[["web-1","h1"]]"#)
            #expect(try await rows(node, "SELECT name, host FROM vms") == #"[["web-1","h1"]]"#)

            // A new intent is kept; one whose request id was compacted away is no longer a retry.
            let fresh = try await node.submit(NodeIntentTests.vm("web-2"), requestID: "new-vm")
            #expect(fresh.outcome == "applied")
            // (Within the retention that retry would be answered `duplicate`; now it is a new intent.)
            let retry = await #expect(throws: NodeError.self) {
                try await node.submit(NodeIntentTests.vm("web-1"), requestID: "old-vm")
            }
            #expect(retry?.message.contains("web-1 already exists") == true, "\(String(describing: retry))")
            #expect(try await rows(node, "SELECT request_id, outcome FROM intents") == #"[["new-vm","applied"]]"#)
            #expect(try await rows(node, "SELECT count(*) FROM vms") == "[[2]]")
        }
    }
}
