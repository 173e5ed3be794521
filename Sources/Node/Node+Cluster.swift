import Replication
import Store

/// A membership change or leadership transfer asked for through the API.
public struct ClusterChangeRequest: Sendable, Codable {
    public var id: String
    public var address: String?
    public var learner: Bool?
}

extension Node {
    var raft: RaftConsensus? { consensus as? RaftConsensus }

    /// What `dwcp cluster status` shows: every member of the region, each as it reports itself
    /// (role, term, last, commit and applied index, dwcp and schema version; asked over the
    /// replication port, `unreachable` with the reason when it does not answer within
    /// `timeout`), and, on the leader, each member's match index and lag.
    public func clusterStatus(timeout: Duration = .seconds(1)) async -> JSONValue {
        guard let raft else {
            return .object([
                ("node_id", .string(configuration.nodeID)), ("replicated", .bool(false)),
                ("version", .string(Node.version)), ("schema_version", .string(ViewStore.schemaVersion)),
                ("members", .array([])),
            ])
        }
        let answers = timeout > .zero ? await raft.otherMemberStatuses(timeout: timeout) : [:]
        let status = raft.status
        let local = raft.localMemberStatus()
        let lastIndex = Int64(status.lastIndex)
        var members: [JSONValue] = []
        for (id, address) in status.membership.all.sorted(by: { $0.key < $1.key }) {
            var fields: [(String, JSONValue)] = [("id", .string(id)), ("address", .string(address))]
            let answer = id == configuration.nodeID ? .success(local) : answers[id]
            if case .success(let member) = answer {
                fields += Self.fields(of: member) + [("reachable", .bool(true))]
            } else {
                // Not asked (the caller asked none, or the member joined meanwhile), or no answer:
                // the role the membership gives it.
                let role =
                    id == status.leader ? "leader" : status.membership.learners[id] != nil ? "learner" : "follower"
                let error = if case .failure(let error) = answer { error.message } else { "not asked" }
                fields += [("role", .string(role)), ("reachable", .bool(false)), ("error", .string(error))]
            }
            if let match = status.matches[id] {
                fields.append(("match_index", .int(Int64(match))))
                fields.append(("lag", .int(max(lastIndex - Int64(match), 0))))
            }
            members.append(.object(fields))
        }
        return .object(
            [("node_id", .string(configuration.nodeID)), ("replicated", .bool(true))] + Self.fields(of: local)
                + [("members", .array(members))])
    }

    /// A member's status as JSON fields.
    private static func fields(of member: MemberStatus) -> [(String, JSONValue)] {
        [
            ("role", .string(member.role)), ("term", .int(Int64(member.term))),
            ("leader", member.leader.isEmpty ? .null : .string(member.leader)),
            ("last_index", .int(Int64(member.lastIndex))), ("commit_index", .int(Int64(member.commitIndex))),
            ("applied_index", .int(Int64(member.appliedIndex))), ("version", .string(member.version)),
            ("schema_version", .string(member.schemaVersion)),
        ]
    }

    func requireRaft() throws -> RaftConsensus {
        guard let raft else { throw NodeError(.invalid, "this node is not part of a replicated region") }
        return raft
    }

    /// Adds a member (as a learner, or as a voter), promotes or removes one.
    public func changeCluster(_ change: RaftMembershipChange) async throws -> UInt64 {
        try await requireRaft().changeMembership(change)
    }

    public func transferLeadership(to target: String) throws {
        try requireRaft().transferLeadership(to: target)
    }
}
