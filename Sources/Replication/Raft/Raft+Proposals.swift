import Store

extension Raft {
    /// Appends `payloads` as record entries if this node leads; returns their indexes. They are
    /// sent with the next ready and commit once a majority has them.
    public mutating func propose(_ payloads: [[UInt8]]) throws -> ClosedRange<UInt64> {
        try checkCanPropose()
        let first = log.lastIndex + 1
        appendAsLeader(payloads.map { LogEntry(index: 0, term: 0, kind: .record, payload: $0) })
        return first...(first + UInt64(payloads.count) - 1)
    }

    /// Appends a no-op entry that carries `payload` if this node leads; returns its index. No
    /// record: the views skip it, but every member meets it at the same index (a views digest's
    /// marker).
    public mutating func proposeNoop(payload: [UInt8]) throws -> UInt64 {
        try checkCanPropose()
        let index = log.lastIndex + 1
        appendAsLeader([LogEntry(index: 0, term: 0, kind: .noop, payload: payload)])
        return index
    }

    /// On a follower: sends `payloads` to the leader under `id`. The answer comes in a ready's
    /// `forwarded` (and is lost with the message if the network drops it: callers time out).
    public mutating func forward(_ payloads: [[UInt8]], id requestID: UInt64) throws {
        guard role != .leader else {
            throw ReplicationError(.invalidChange, "\(id) leads: it proposes, it does not forward")
        }
        guard let leader else {
            throw ReplicationError(.unavailable, "\(id) knows no leader to forward to", leader: nil)
        }
        send(.propose(id: requestID, payloads: payloads), to: leader)
    }

    /// On the leader: appends a member's forwarded proposal and tells it where it landed. One from
    /// a node that is not a member is refused for good.
    mutating func handleForwardedProposal(from follower: String, id requestID: UInt64, payloads: [[UInt8]]) {
        guard membership.contains(follower) else {
            send(.proposeRefused(id: requestID), to: follower)
            return
        }
        guard !payloads.isEmpty, (try? checkCanPropose()) != nil else {
            send(.proposeResponse(id: requestID, index: 0), to: follower)
            return
        }
        // A repeat of one appended this term: where it went (a leader's own entries stay).
        if let first = forwardsTaken[follower]?[requestID] {
            send(.proposeResponse(id: requestID, index: first), to: follower)
            return
        }
        let first = log.lastIndex + 1
        appendAsLeader(payloads.map { LogEntry(index: 0, term: 0, kind: .record, payload: $0) })
        forwardsTaken[follower, default: [:]][requestID] = first
        // (Pruned in halves, so the cost is spread; a follower's ids start at random in each run,
        // so an earlier run's cannot be taken for a later one's.)
        if forwardsTaken[follower]!.count > 2 * Self.forwardsRemembered {
            let oldest = requestID > UInt64(Self.forwardsRemembered) ? requestID - UInt64(Self.forwardsRemembered) : 0
            forwardsTaken[follower] = forwardsTaken[follower]!.filter { $0.key > oldest }
        }
        send(.proposeResponse(id: requestID, index: first), to: follower)
    }

    /// Proposes one membership change. Only one may be uncommitted at a time, and only once this
    /// leader has committed an entry of its own term (its no-op): a change an earlier leader left
    /// uncommitted may still be in some logs, and one server at a time is safe only if the two
    /// changes cannot both take effect (the flaw of single-server changes that Ongaro described
    /// in 2015; this is its fix).
    public mutating func proposeMembership(_ change: RaftMembershipChange) throws -> UInt64 {
        let next = try checkMembership(change)
        appendAsLeader([LogEntry(index: 0, term: 0, kind: .membership, payload: next.encoded())])
        return log.lastIndex
    }

    /// What ``proposeMembership(_:)`` checks, without proposing: the membership `change` gives,
    /// or why it is refused.
    public func checkMembership(_ change: RaftMembershipChange) throws -> RaftMembership {
        try checkCanPropose()
        guard membershipIndex <= log.committed else {
            throw ReplicationError(
                .invalidChange, "a membership change (entry \(membershipIndex)) is still being committed; try again")
        }
        guard committedInCurrentTerm else {
            throw ReplicationError(
                .invalidChange, "\(id) has not yet committed an entry of its term \(term); try again")
        }
        let next = try change.applied(to: membership)
        switch change {
        case .promote(let learner): try requireCaughtUp(learner)
        case .addVoter(let id, _) where membership.learners[id] != nil: try requireCaughtUp(id)
        default: break
        }
        // A membership takes effect once in the log, so a change whose voters cannot form its
        // majority stops the group, its own commit included, until they answer: a voter added that
        // cannot be reached, a working voter removed while others are down. Refused instead
        // (etcd's strict reconfiguration check); a new member joins as a learner first.
        let silent = next.voters.keys.filter { !isAnswering($0) }.sorted()
        let answering = next.voters.count - silent.count
        guard answering >= next.quorum else {
            throw ReplicationError(
                .invalidChange,
                "refused: after this change \(next.quorum) of its \(next.voters.count) voters must answer to commit anything, and only \(answering) do (\(silent.joined(separator: ", ")) \(silent.count == 1 ? "does" : "do") not); bring \(silent.count == 1 ? "it" : "them") back first, or add a new member as a learner and promote it once it has caught up"
            )
        }
        // An id or address with a space or a line break would read back as another membership.
        guard (try? RaftMembership(decoding: next.encoded())) == next else {
            throw ReplicationError(.invalidChange, "a member id or address holds a space or a line break")
        }
        return next
    }

    /// Hands leadership to `target`: brings its log up to date, then tells it to campaign at once.
    /// Proposals are refused until the transfer ends (it is abandoned after an election timeout).
    public mutating func transferLeadership(to target: String) throws {
        guard role == .leader else {
            throw ReplicationError(.notLeader, "\(id) is not the leader", leader: leader)
        }
        guard target != id else {
            // Stay leader: a transfer in flight is called off.
            transferee = nil
            return
        }
        guard membership.isVoter(target), let member = progress[target] else {
            throw ReplicationError(.invalidChange, "\(target) is not a voter of this group")
        }
        // It could not take over, and proposals would wait an election timeout for nothing. (A
        // leader just elected has not heard from every voter yet: silent since its election.)
        guard silence(of: target) < configuration.electionTicks else {
            throw ReplicationError(
                .invalidChange, "\(target) has not answered for an election timeout: it cannot take over now")
        }
        transferee = target
        transferElapsed = 0
        if member.match == log.lastIndex {
            send(.timeoutNow, to: target)
        } else {
            sendAppend(to: target, allowEmpty: true)
        }
    }

    /// The voter best placed to lead once this leader stops (a graceful shutdown hands leadership
    /// to it): of the other voters heard from within half an election timeout, the one with the
    /// longest log matching this one's, the first by id on a tie; nil when this member does not
    /// lead or no other voter answers lately (a hand-off to it could not finish).
    public var successor: String? {
        guard role == .leader else { return nil }
        let heard = membership.voters.keys.filter { member in
            member != id && (progress[member]?.silentTicks ?? .max) < configuration.electionTicks / 2
        }
        return heard.sorted().max { (progress[$0]?.match ?? 0) < (progress[$1]?.match ?? 0) }
    }

    /// How far behind the leader's commit index a learner may be and still be promoted.
    public static let promotionLag: UInt64 = 1_000

    /// Refuses to promote a learner that does not answer or is more than ``promotionLag`` entries
    /// behind the commit index (etcd refuses a learner not in sync too): as a voter it would count
    /// toward the majority before it could help form one, so the group could lose one member fewer
    /// meanwhile, and one more failure would stop it.
    func requireCaughtUp(_ learner: String) throws {
        let match = progress[learner]?.match ?? 0
        // (Not heard from since this leader's election counts as silent however recent the
        // election: a learner that never ran was promoted right after a hand-over.)
        let why: String? =
            if (progress[learner]?.silentTicks ?? .max) == .max {
                "this leader has not heard from it yet"
            } else if silence(of: learner) >= configuration.electionTicks {
                "it has not answered for an election timeout"
            } else if match + Self.promotionLag < log.committed {
                "it has \(match) of the \(log.committed) committed entries"
            } else {
                nil
            }
        guard let why else { return }
        throw ReplicationError(
            .invalidChange,
            "refused: \(learner) has not caught up (\(why)); promote it once it is within \(Self.promotionLag) entries (dwcp cluster status shows its lag): as a voter it would count toward the majority before it could help form one"
        )
    }

    /// On the leader, every other member (voters and learners) with the ticks since it was last
    /// heard from (counted from this leader's election for one not heard from since), and whether
    /// it was heard from in this term at all; empty on a member that does not lead.
    public var memberSilences: [String: (ticks: Int, heardThisTerm: Bool)] {
        guard role == .leader else { return [:] }
        var silences: [String: (ticks: Int, heardThisTerm: Bool)] = [:]
        for member in membership.all.keys where member != id {
            silences[member] = (silence(of: member), (progress[member]?.silentTicks ?? .max) != .max)
        }
        return silences
    }

    /// On the leader, whether a voter has not been heard from since this leader's election (a
    /// leader just elected hears from each within a heartbeat or two).
    public var votersUnheardThisTerm: Bool {
        role == .leader
            && membership.voters.keys.contains { $0 != id && (progress[$0]?.silentTicks ?? .max) == .max }
    }

    /// On the leader, the other voters it has not heard from within the last election timeout,
    /// by id; empty on a member that does not lead.
    public var silentVoters: [String] {
        guard role == .leader else { return [] }
        return membership.voters.keys.filter { !isAnswering($0) }.sorted()
    }

    /// Leader: ticks since `member` was last heard from; one not heard from since this leader's
    /// election (a leader hears from each voter within a heartbeat or two) counts from the
    /// election, not as silent for ever. For what may be tried and fail harmlessly (a transfer, a
    /// promotion's catch-up check); a change that could stop the group asks ``isAnswering(_:)``.
    func silence(of member: String) -> Int {
        guard let silent = progress[member]?.silentTicks else { return .max }
        return silent == .max ? leadingTicks : silent
    }

    /// Whether this leader heard from `member` within the last election timeout (itself: always);
    /// one not heard from since the election is not answering, whatever it did before.
    func isAnswering(_ member: String) -> Bool {
        member == id || (progress[member]?.silentTicks ?? .max) < configuration.electionTicks
    }

    private func checkCanPropose() throws {
        guard role == .leader else {
            throw ReplicationError(.notLeader, "\(id) is not the leader", leader: leader)
        }
        guard transferee == nil else {
            throw ReplicationError(
                .transferring, "leadership is moving to \(transferee!); try again", leader: transferee)
        }
    }
}
