import Replication

extension RaftConsensus {
    /// What answered at a new member's address when it was asked for its status before the
    /// change that adds it.
    public enum NewMemberProbe: Sendable, Equatable {
        /// The node itself answered there.
        case answered
        /// Another node answered there, as this id.
        case otherNode(String)
        /// Nothing answered within the probe's time: not started yet, or the address is wrong.
        case silent
        /// The change does not add a member at a new address (a promotion, a removal, a retry of
        /// an addition already made): nothing was asked.
        case notAsked
    }

    /// How long an addition waits for the new member's answer at its address.
    static let newMemberProbeTimeout = Duration.seconds(1)

    /// Before `change` adds a member at an address, asks whoever listens there for its status, on
    /// the status lane as `dwcp cluster status` asks a member. A wrong port or another member's
    /// address written another way (`localhost` for `127.0.0.1`) used to be taken without a word,
    /// and found only later, by `cluster status` and the leader's warnings.
    public func probeNewMember(_ change: RaftMembershipChange) async -> NewMemberProbe {
        let (id, address): (String, String)
        switch change {
        case .addLearner(let newID, let newAddress), .addVoter(let newID, let newAddress):
            (id, address) = (newID, newAddress)
        case .promote, .remove:
            return .notAsked
        }
        let membership = status.membership
        // Already there (a retry, or a learner added as a voter), or another member's address
        // written the same way, which the change itself refuses.
        guard membership.all[id] != address, !membership.all.values.contains(address) else { return .notAsked }
        do {
            let answer = try await statusAnswers.ask(
                timeout: Self.newMemberProbeTimeout, every: .milliseconds(200), accepts: { _ in true }
            ) { [self] question in
                let asking = MemberStatusExchange(from: nodeID, to: id, id: question, status: nil)
                transport.send(RaftFrame(group: group, memberStatus: asking), to: address, lane: .status)
            }
            return answer.from == id ? .answered : .otherNode(answer.from)
        } catch {
            return .silent
        }
    }
}
