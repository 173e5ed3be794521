import Store
import TestSupport
import Testing

@testable import Node

/// `dwcp host evacuate` in a node: a host that is not ready gives its VMs up, and the scheduler
/// places them on another host.
@Suite struct HostEvacuationNodeTests {
    @Test("the VMs of an evacuated host are placed anew on another host, each once, and their receipt names the host")
    func evacuatedVMsArePlacedElsewhere() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(NodeIntentTests.host("h1", cpus: 8))
            for name in ["web-1", "web-2"] { _ = try await node.submit(NodeIntentTests.vm(name, cpus: 2)) }
            #expect(
                try await rows(node, "SELECT name, host FROM vms ORDER BY name") == #"[["web-1","h1"],["web-2","h1"]]"#)
            _ = try await node.submit(NodeIntentTests.host("h2", cpus: 8))
            // Ready (added by hand): refused, and nothing is written.
            let ready = await #expect(throws: NodeError.self) { _ = try await node.submit(.evacuateHost(name: "h1")) }
            #expect(
                ready?.code == .conflict && ready?.message.contains("placement would put its VMs back on it") == true)
            // Its machine is gone (as the leader reports a host whose member went silent).
            let gone = Record(
                at: Node.now(), .hostStateReported(HostStateReported(name: "h1", state: "not_ready", reason: "gone")))
            _ = try await node.consensus.propose([gone.encoded()])
            let notReady = #"[["not_ready"]]"#
            #expect(
                try await HostLivenessTests.poll(node, "SELECT state FROM hosts WHERE name = 'h1'", until: notReady)
                    == notReady)
            let receipt = try await node.submit(.evacuateHost(name: "h1"), requestID: "evacuate-h1")
            #expect(receipt.outcome == "applied")
            #expect(
                receipt.subject?["evacuated_index"]?.intValue == Int64(receipt.logIndex),
                "\(String(describing: receipt.subject))")
            let placed = #"[["web-1","h2"],["web-2","h2"]]"#
            #expect(
                try await HostLivenessTests.poll(node, "SELECT name, host FROM vms ORDER BY name", until: placed)
                    == placed)
            #expect(try await rows(node, "SELECT cpus_used FROM hosts ORDER BY name") == "[[0],[4]]")
            #expect(
                try await rows(node, "SELECT count(*) FROM placements WHERE host = 'h2'") == "[[2]]",
                "each VM placed once on h2")
            // A retry of the request is the same evacuation, not a second one.
            let again = try await node.submit(.evacuateHost(name: "h1"), requestID: "evacuate-h1")
            #expect(again.logIndex == receipt.logIndex)
        }
    }
}
