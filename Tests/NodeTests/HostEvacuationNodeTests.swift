import Replication
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
            #expect(try node.vmsEvacuated(at: receipt.logIndex) == ["web-1", "web-2"])
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

extension HostEvacuationNodeTests {
    @Test(
        "in a region, an evacuation is refused while a member does not answer, unless its host agent runs a host that is not ready"
    )
    func evacuationWaitsForTheMembers() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let leading = try leader(of: nodes)
            _ = try await leading.submit(NodeIntentTests.host("h1", cpus: 8))
            _ = try await leading.submit(NodeIntentTests.vm("web-1", cpus: 2))
            _ = try await leading.submit(NodeIntentTests.host("h2", cpus: 8))
            // A learner that never answers (nothing listens at its address).
            _ = try await leading.raft!.changeMembership(
                .addLearner(id: "n9", address: "127.0.0.1:\(try closedPort())"))
            func down(agent: String) async throws {
                let report = Record(
                    at: Node.now(),
                    .hostStateReported(HostStateReported(name: "h1", state: "not_ready", reason: "gone", agent: agent)))
                _ = try await leading.consensus.propose([report.encoded()])
                let expected = #"[["not_ready","\#(agent)"]]"#
                #expect(
                    try await HostLivenessTests.poll(
                        leading, "SELECT state, agent FROM hosts WHERE name = 'h1'", until: expected) == expected)
            }
            // h1's agent is another member's (n8, gone): n9's silence holds the evacuation up.
            try await down(agent: "n8")
            let refused = await #expect(throws: NodeError.self) {
                _ = try await leading.submit(.evacuateHost(name: "h1"))
            }
            #expect(
                refused?.code == .unavailable
                    && refused?.message.contains("host h1 cannot be evacuated now: member n9 did not answer") == true,
                "\(String(describing: refused))")
            // n9 runs h1's agent: its silence is why h1 is evacuated, and is passed over.
            try await down(agent: "n9")
            let receipt = try await leading.submit(.evacuateHost(name: "h1"))
            #expect(receipt.outcome == "applied")
            let placed = #"[["h2"]]"#
            #expect(try await HostLivenessTests.poll(leading, "SELECT host FROM vms", until: placed) == placed)
        }
    }

    @Test(
        "a check of the members that finds fewer than a majority of the voters answering says so, not one member's silence"
    )
    func lostMajorityIsSaid() {
        let silent = Result<MemberStatus, NodeError>.failure(NodeError(.unavailable, "no answer"))
        #expect(
            Node.majorityLost(voters: ["n1", "n2", "n3"], answers: ["n3": silent, "n2": silent])?.description
                == "fewer than a majority of the region's voters answer (n2, n3 do not): nothing commits until they do")
        #expect(Node.majorityLost(voters: ["n1", "n2", "n3"], answers: ["n2": silent]) == nil)
        // A silent learner (n9, not a voter) takes nothing from the majority.
        #expect(Node.majorityLost(voters: ["n1", "n2", "n3"], answers: ["n2": silent, "n9": silent]) == nil)
        let five = ["n1", "n2", "n3", "n4", "n5"]
        #expect(Node.majorityLost(voters: five, answers: ["n2": silent, "n3": silent]) == nil)
        // Silence, as one member's is: at a region's first start it is logged at info for a minute.
        #expect(Node.majorityLost(voters: five, answers: ["n2": silent, "n3": silent, "n5": silent])?.silence == true)
    }
}
