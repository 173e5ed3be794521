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

    /// What `dwcp cluster status` shows: this node's view of the region's members.
    public func clusterStatus() -> JSONValue {
        guard let raft else {
            return .object([
                ("node_id", .string(configuration.nodeID)), ("replicated", .bool(false)),
                ("members", .array([])),
            ])
        }
        let status = raft.status
        let lastIndex = Int64(status.lastIndex)
        var members: [JSONValue] = []
        for (id, address) in status.membership.all.sorted(by: { $0.key < $1.key }) {
            let role =
                id == status.leader ? "leader" : status.membership.learners[id] != nil ? "learner" : "follower"
            var fields: [(String, JSONValue)] = [
                ("id", .string(id)), ("address", .string(address)), ("role", .string(role)),
            ]
            if let match = status.matches[id] {
                fields.append(("match_index", .int(Int64(match))))
                fields.append(("lag", .int(max(lastIndex - Int64(match), 0))))
            }
            members.append(.object(fields))
        }
        return .object([
            ("node_id", .string(configuration.nodeID)), ("replicated", .bool(true)),
            ("role", .string(status.role.rawValue)), ("term", .int(Int64(status.term))),
            ("leader", status.leader.map { .string($0) } ?? .null),
            ("last_index", .int(lastIndex)), ("commit_index", .int(Int64(consensus.committed.value))),
            ("applied_index", .int(Int64(applied.value))), ("members", .array(members)),
        ])
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
