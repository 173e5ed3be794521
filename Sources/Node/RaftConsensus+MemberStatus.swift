import Replication
import Store

extension RaftConsensus {
    /// This member's status, as it answers a status question.
    func localMemberStatus() -> MemberStatus {
        let status = self.status
        return MemberStatus(
            role: status.role(of: nodeID), leader: status.leader ?? "", term: status.term,
            lastIndex: status.lastIndex, commitIndex: committed.value, appliedIndex: snapshots.applied.value,
            version: Node.version, schemaVersion: ViewStore.schemaVersion)
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

    /// Asks one member (``statusAnswer(of:at:timeout:)``).
    private func askStatus(of member: String, at address: String, timeout: Duration) async -> Result<
        MemberStatus, NodeError
    > {
        do {
            let answer = try await statusAnswer(of: member, at: address, timeout: timeout)
            guard answer.from == member else {
                // Another node listens at the member's address, and answered as itself.
                return .failure(
                    NodeError(
                        .unavailable,
                        "at \(address) listens \(answer.from), not \(member): the membership gives \(member) another node's address (remove \(member) and add it again at its own address; see the log of \(answer.from))"
                    ))
            }
            return .success(answer.status)
        } catch let error as NodeError {
            // Its silence has a reason the transport heard: it belongs to another region.
            if let other = transport.otherRegion(at: address), let own = transport.regionID {
                return .failure(
                    NodeError(
                        .unavailable,
                        "the member at \(address) is of another region (region id \(RegionIdentified.described(other)), this one's \(RegionIdentified.described(own))) and refuses this member's connections: check the address in the membership and the --peer lists",
                        cause: error))
            }
            return .failure(error)
        } catch {
            return .failure(NodeError(.unavailable, "\(error)"))
        }
    }

    /// The status answer of whoever listens at `address`, asked as `member`'s, on the status lane
    /// of the transport, asked again under the same id every 200 ms until it answers (the
    /// question or the answer is dropped while the sender waits out a back-off from
    /// reconnecting); it may answer as another node.
    func statusAnswer(of member: String, at address: String, timeout: Duration) async throws -> (
        from: String, status: MemberStatus
    ) {
        try await statusAnswers.ask(timeout: timeout, every: .milliseconds(200), accepts: { _ in true }) {
            [self] question in
            sendStatusQuestion(to: member, at: address, id: question)
        }
    }

    /// Tells every other member that this one is up, as it starts: a status question that nobody
    /// waits for (id 0, never a waiter's; the answers are dropped). A member that had been failing
    /// to reach this one while it was down then stops waiting out its back-off
    /// (``RaftTransport/retryNow(_:)``): a restarted follower hears from its leader at once,
    /// not after its first election timeout.
    func announce() {
        let members = status.membership.all
        for (id, address) in members where id != nodeID { sendStatusQuestion(to: id, at: address, id: 0) }
        tellAPIAddress(toUntold: members)
        // Its region to its --peers too: a node that joins says it before it is added.
        tellRegion(toUntold: addresses.withLock { $0 })
    }

    /// Sends `member` a status question under `id` (0: an announcement; ``apiQuestion``: asked for
    /// the API address beside the answer; else a waiter's).
    func sendStatusQuestion(to member: String, at address: String, id: UInt64) {
        let question = MemberStatusExchange(from: nodeID, to: member, id: id, status: nil)
        transport.send(RaftFrame(group: group, memberStatus: question), to: address, lane: .status)
    }

    /// Sets where this member's API listens, and tells the other members (they name it in their
    /// not-the-leader refusals while this member leads).
    public func advertiseAPI(_ address: String) {
        guard address.utf8.count <= 255 else {
            logger.warning("\(group): the API address \(address) is too long to tell the other members")
            return
        }
        ownAPIAddress.withLock { $0 = address }
        apiToldTo.withLock { $0 = [:] }  // a new address: everyone is told again
        tellAPIAddress(toUntold: status.membership.all)
    }

    /// Where `member`'s API listens, as it said; nil when it has not (yet), or is a dwcp before
    /// API addresses were exchanged.
    public func apiAddress(of member: String) -> String? {
        member == nodeID ? ownAPIAddress.withLock { $0 } : apiAddresses.withLock { $0[member] }
    }

    /// Another member said where its API listens: kept if it is a member and the address parses.
    func receive(_ said: MemberAPIAddress) {
        guard addresses.withLock({ $0[said.from] }) != nil, Validation.hostAndPort(said.address) != nil else { return }
        apiAddresses.withLock { $0[said.from] = said.address }
    }

    /// On a change of membership or leader: tells the members this one has not told yet (one that
    /// joined, or all of them when this one joined and learns its first membership) where its API
    /// listens; forgets the API addresses of members that left; and asks the members whose API
    /// address it does not know for it (the answer to a status question carries it; one with
    /// ``apiQuestion``'s id nobody waits for).
    func noteAPIAddresses(members: [String: String]) {
        apiAddresses.withLock { known in
            for id in known.keys where members[id] == nil { known[id] = nil }
        }
        tellAPIAddress(toUntold: members)
        // (A member's own 103 may have come before this one knew it as a member, and been dropped.)
        let unknown = apiAddresses.withLock { known in members.filter { $0.key != nodeID && known[$0.key] == nil } }
        for (id, address) in unknown.sorted(by: { $0.key < $1.key }) { askForAPIAddress(of: id, at: address) }
    }

    /// A member connected in (it started, or its connection came back after a cut): tells it again
    /// where this member's API listens, since a 103 sent while it could not be reached was dropped.
    func retellAPIAddress(to member: String, at address: String) {
        apiToldTo.withLock { $0[member] = nil }
        tellAPIAddress(toUntold: [member: address])
    }

    /// Asks `member` where its API listens: a status question nobody waits for, whose answer
    /// comes with a 103.
    func askForAPIAddress(of member: String, at address: String) {
        sendStatusQuestion(to: member, at: address, id: Self.apiQuestion)
    }

    /// Tells the `members` this one has not told yet (at that replication address) where its API
    /// listens, once it knows.
    private func tellAPIAddress(toUntold members: [String: String]) {
        guard ownAPIAddress.withLock({ $0 }) != nil else { return }
        let untold = apiToldTo.withLock { Self.untold(members, besides: nodeID, told: &$0) }
        for (id, address) in untold.sorted(by: { $0.key < $1.key }) { sendAPIAddress(to: id, at: address) }
    }

    /// The `members` (other than `id`) not in `told` at their address, now added to it: whom to
    /// tell something each is told once per replication address (the API address, the region).
    static func untold(_ members: [String: String], besides id: String, told: inout [String: String]) -> [String:
        String]
    {
        let untold = members.filter { member, address in member != id && told[member] != address }
        told.merge(untold) { _, new in new }
        return untold
    }

    /// The id of a status question asked only for the API address beside its answer (never a
    /// waiter's: waiters count up from 1).
    static let apiQuestion = UInt64.max

    private func sendAPIAddress(to member: String, at address: String) {
        guard let api = ownAPIAddress.withLock({ $0 }) else { return }
        let said = MemberAPIAddress(from: nodeID, to: member, address: api)
        transport.send(RaftFrame(group: group, memberAPIAddress: said), to: address, lane: .status)
    }

    /// A status question from another member gets this member's status; an answer goes to the
    /// question it answers (an answer nobody waits for any more is dropped).
    func receive(_ exchange: MemberStatusExchange) {
        if let status = exchange.status {
            statusAnswers.resolve(exchange.id, with: .success((exchange.from, status)))
            return
        }
        guard let address = addresses.withLock({ $0[exchange.from] }) else { return }
        if exchange.id == 0 {
            // An announcement: the member just started. A leader sends it what it lacks now.
            state.withLock { $0.peerIsBack(exchange.from) }
            wake.yield()
        }
        // Beside the answer, where this member's API listens and its region (an asker too old to
        // know them skips them).
        sendAPIAddress(to: exchange.from, at: address)
        retellRegion(to: exchange.from, at: address)
        let answer = MemberStatusExchange(
            from: nodeID, to: exchange.from, id: exchange.id, status: localMemberStatus())
        transport.send(RaftFrame(group: group, memberStatus: answer), to: address, lane: .status)
    }
}
