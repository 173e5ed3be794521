import Replication

extension RaftConsensus {
    /// What answered at a new member's address when it was asked for its status before the
    /// change that adds it.
    public enum NewMemberProbe: Sendable, Equatable {
        /// The node itself answered there.
        case answered
        /// Another node answered there (with TLS: its certificate spoke for another member).
        case otherNode(String)
        /// Nothing answered within the probe's time: not started yet, or the address is wrong;
        /// with why the connection failed, when it did.
        case silent(String?)
        /// The change does not add a member at a new address (a promotion, a removal, a retry of
        /// an addition already made): nothing was asked.
        case notAsked
    }

    /// How long an addition waits for the new member's answer at its address.
    public static let newMemberProbeTimeout = Duration.seconds(1)
    /// How long one question of the probe waits before the transport's state is looked at.
    static let newMemberProbeRound = Duration.milliseconds(100)

    /// Before a change adds member `id` at `address`, asks whoever listens there for its status,
    /// as `dwcp cluster status` asks a member. A wrong port or another member's address written
    /// another way (`localhost` for `127.0.0.1`) used to be taken without a word, and found only
    /// later, by `cluster status` and the leader's warnings.
    public func probeNewMember(_ id: String, at address: String, timeout: Duration = newMemberProbeTimeout) async
        -> NewMemberProbe
    {
        let membership = status.membership
        // Already there (a retry, or a learner added as a voter), or another member's address
        // written the same way, which the change itself refuses.
        guard membership.all[id] != address, !membership.all.values.contains(address) else { return .notAsked }
        // (Afresh: a failure remembered from an earlier attempt must not answer for this one.)
        transport.forget(address)
        let deadline = ContinuousClock.now + timeout
        while true {
            do {
                let answer = try await statusAnswer(
                    of: id, at: address, timeout: min(deadline - .now, Self.newMemberProbeRound))
                guard answer.from != id else { return .answered }
                transport.forget(address)
                return .otherNode(answer.from)
            } catch {
                // With TLS, a certificate for another member fails the handshake: no answer comes.
                let failure = transport.lastFailure(at: address, lane: .status)
                if let certified = failure?.certifiedAs, certified != id {
                    transport.forget(address)
                    return .otherNode(certified)
                }
                // A connection that failed (refused: nothing listens) is not waited out; a
                // question that is merely unanswered is asked again until the deadline.
                if failure != nil || ContinuousClock.now >= deadline { return .silent(failure?.reason) }
            }
        }
    }
}
