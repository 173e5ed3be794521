import Replication
import Store

extension RaftConsensus {
    /// This member's status, as it answers a status question.
    func localMemberStatus() -> MemberStatus {
        let status = self.status
        let role =
            status.leader == nodeID
            ? "leader" : status.membership.learners[nodeID] != nil ? "learner" : status.role.rawValue
        return MemberStatus(
            role: role, leader: status.leader ?? "", term: status.term, lastIndex: status.lastIndex,
            commitIndex: committed.value, appliedIndex: snapshots.applied.value, version: Node.version,
            schemaVersion: ViewStore.schemaVersion)
    }

    /// Asks every other member of the group for its status, all at once. A member that does not
    /// answer within `timeout` (stopped, cut off, or a dwcp too old to know the question) is
    /// reported as the error.
    func otherMemberStatuses(timeout: Duration) async -> [String: Result<MemberStatus, NodeError>] {
        let members = status.membership.all.filter { $0.key != nodeID }
        return await withTaskGroup(of: (String, Result<MemberStatus, NodeError>).self) { group in
            for (id, address) in members {
                group.addTask { (id, await self.askStatus(of: id, at: address, timeout: timeout)) }
            }
            var answers: [String: Result<MemberStatus, NodeError>] = [:]
            for await (id, answer) in group { answers[id] = answer }
            return answers
        }
    }

    /// Asks one member, again every 200 ms until `timeout`: the transport drops a frame while it
    /// opens a connection, and a follower usually has none yet to another follower to answer on.
    private func askStatus(of id: String, at address: String, timeout: Duration) async -> Result<
        MemberStatus, NodeError
    > {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let wait = min(.milliseconds(200), deadline - ContinuousClock.now)
            if let status = try? await statusAnswers.wait(
                timeout: wait,
                send: { question in
                    transport.send(
                        RaftFrame(
                            group: group,
                            memberStatus: MemberStatusExchange(from: nodeID, to: id, id: question, status: nil)),
                        to: address)
                })
            {
                return .success(status)
            }
        }
        return .failure(NodeError(.unavailable, "no answer within \(timeout)"))
    }

    /// A status question from another member gets this member's status; an answer goes to the
    /// question it answers (an answer nobody waits for any more is dropped).
    func receive(_ exchange: MemberStatusExchange) {
        if let status = exchange.status {
            statusAnswers.resolve(exchange.id, with: .success(status))
            return
        }
        guard let address = addresses.withLock({ $0[exchange.from] }) else { return }
        let answer = MemberStatusExchange(
            from: nodeID, to: exchange.from, id: exchange.id, status: localMemberStatus())
        transport.send(RaftFrame(group: group, memberStatus: answer), to: address)
    }
}
