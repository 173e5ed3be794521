import Foundation
import Replication
import TestSupport
import Testing

@testable import Node

/// `dwcp cluster add-member` asks whoever listens at the new member's address before it adds it.
@Suite struct NewMemberProbeTests {
    /// How long the tests wait for a node that does answer (a full run loads two cores: the
    /// product's 1 s is for a member that is up).
    static let answerTimeout = Duration.seconds(15)

    @Test("add-member refuses an address where another node answers: a joining node, or a member under another name")
    func anotherNodeAnswers() async throws {
        // n5 waits to join; the operator adds "n4" at its address.
        try await withThreeMembersAndAJoiner(TemporaryDirectory(), joiner: "n5") { leader, joiner, port in
            let refusal = await #expect(throws: NodeError.self) {
                _ = try await leader.addMember(
                    .addLearner(id: "n4", address: "127.0.0.1:\(port)"), probeTimeout: Self.answerTimeout)
            }
            #expect(refusal?.code == .invalid)
            #expect(
                refusal?.message.contains("at 127.0.0.1:\(port) listens n5, not n4 (n5 is not a member") == true,
                "\(String(describing: refusal))")
            // n2's address, written with a name instead of the address the membership has.
            let n2 = try #require(leader.raft!.status.membership.all["n2"]?.split(separator: ":").last)
            let alias = await #expect(throws: NodeError.self) {
                _ = try await leader.addMember(
                    .addVoter(id: "n4", address: "localhost:\(n2)"), probeTimeout: Self.answerTimeout)
            }
            #expect(
                alias?.message.contains("listens n2, not n4 (n2 is a member of this region, at 127.0.0.1:\(n2))")
                    == true, "\(String(describing: alias))")
            #expect(leader.raft!.status.membership.all["n4"] == nil)
            // Asked for what only a leader does before it is added, the joiner says it is no
            // member (it used to say the region had no leader).
            let early = await #expect(throws: NodeError.self) { _ = try await joiner.proposeViewsDigest() }
            #expect(
                early?.message.contains("it is not a member of the region as far as it knows") == true,
                "\(String(describing: early))")
            // Added under its own name, it answers: no warning.
            let added = try await leader.addMember(
                .addLearner(id: "n5", address: "127.0.0.1:\(port)"), probeTimeout: Self.answerTimeout)
            #expect(added.warning == nil)
            #expect(leader.raft!.status.membership.learners["n5"] == "127.0.0.1:\(port)")
        }
    }

    @Test("add-member where nothing answers adds the member and warns that nothing answered there")
    func nothingAnswers() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let leader = try leader(of: nodes)
            let address = "127.0.0.1:\(try closedPort())"
            let added = try await leader.addMember(.addLearner(id: "n4", address: address))
            #expect(
                added.warning?.contains("nothing answered as n4 at \(address) (Connection refused):")
                    == true,
                "\(String(describing: added.warning))")
            #expect(leader.raft!.status.membership.learners["n4"] == address)
            // Once added there, nothing is asked again (a retry, or the learner added as a voter).
            #expect(await leader.raft!.probeNewMember("n4", at: address) == .notAsked)
        }
    }
}
