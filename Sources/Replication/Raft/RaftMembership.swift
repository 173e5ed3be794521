import Store

/// The members of a Raft group: voters, which elect the leader and form quorums, and learners,
/// which receive the log but do not vote. Each member has the address its peers reach it at.
///
/// A membership change is a `.membership` log entry carrying the whole new membership; a node
/// uses the latest one in its log, committed or not (one server changes at a time, so any two
/// consecutive memberships share a majority).
public struct RaftMembership: Sendable, Equatable, CustomStringConvertible {
    public var voters: [String: String]
    public var learners: [String: String]

    public init(voters: [String: String] = [:], learners: [String: String] = [:]) {
        self.voters = voters
        self.learners = learners
    }

    /// Every member, voter or learner.
    public var all: [String: String] { voters.merging(learners) { voter, _ in voter } }
    /// The number of voters that make a majority.
    public var quorum: Int { voters.count / 2 + 1 }

    public func isVoter(_ id: String) -> Bool { voters[id] != nil }
    public func contains(_ id: String) -> Bool { voters[id] != nil || learners[id] != nil }

    public var description: String {
        let voterList = voters.keys.sorted().joined(separator: ",")
        let learnerList = learners.keys.sorted().joined(separator: ",")
        return learnerList.isEmpty ? "voters {\(voterList)}" : "voters {\(voterList)} learners {\(learnerList)}"
    }

    /// The entry payload (``MembershipRecord``'s wire form).
    public func encoded() -> [UInt8] {
        MembershipRecord(voters: voters, learners: learners).encoded()
    }

    /// Decodes ``encoded()``; a malformed payload, or one that is not in its canonical form, is
    /// an error.
    public init(decoding payload: [UInt8]) throws {
        do {
            let record = try MembershipRecord(decoding: payload)
            self.init(voters: record.voters, learners: record.learners)
        } catch let error as StoreError {
            throw ReplicationError(.malformed, error.message)
        }
    }
}

/// One change of membership, proposed by an operator (`dwcp cluster add-member` and friends).
public enum RaftMembershipChange: Sendable, Equatable {
    case addLearner(id: String, address: String)
    case addVoter(id: String, address: String)
    case promote(id: String)
    case remove(id: String)

    /// The membership after this change, or why it cannot be made.
    public func applied(to membership: RaftMembership) throws -> RaftMembership {
        var next = membership
        switch self {
        case .addLearner(let id, let address):
            try Self.requireFree(address, for: id, in: membership)
            guard !membership.contains(id) else {
                throw ReplicationError(.invalidChange, "\(id) is already a member")
            }
            next.learners[id] = address
        case .addVoter(let id, let address):
            try Self.requireFree(address, for: id, in: membership)
            guard !membership.isVoter(id) else { throw ReplicationError(.invalidChange, "\(id) is already a voter") }
            // A learner added as a voter is promoted: at the address it has.
            if let current = membership.learners[id], current != address {
                throw ReplicationError(
                    .invalidChange,
                    "\(id) is a learner at \(current), not \(address): promote it, or remove it and add it again at the new address"
                )
            }
            next.learners[id] = nil
            next.voters[id] = address
        case .promote(let id):
            guard let address = membership.learners[id] else {
                throw ReplicationError(
                    .invalidChange,
                    membership.voters[id] != nil
                        ? "\(id) is a voter already"
                        : "\(id) is not a member: add it as a learner first (add-member --learner)")
            }
            next.learners[id] = nil
            next.voters[id] = address
        case .remove(let id):
            guard membership.contains(id) else { throw ReplicationError(.invalidChange, "\(id) is not a member") }
            next.voters[id] = nil
            next.learners[id] = nil
            guard !next.voters.isEmpty else {
                throw ReplicationError(.invalidChange, "removing \(id) would leave the group without voters")
            }
        }
        return next
    }

    /// Refuses `address` when a member other than `id` has it: two members at one address would
    /// each get the other's messages.
    private static func requireFree(_ address: String, for id: String, in membership: RaftMembership) throws {
        if let other = membership.all.first(where: { $0.value == address && $0.key != id }) {
            throw ReplicationError(.invalidChange, "\(address) is \(other.key)'s replication address already")
        }
    }
}
