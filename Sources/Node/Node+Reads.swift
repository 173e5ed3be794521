import Query

extension Node {
    /// Runs a read-only query once the views are as fresh as `consistency` asks.
    public func sql(
        _ query: String, maxRows: Int? = nil, consistency: ReadConsistency = .linearizable
    ) async throws -> QueryResult {
        try await waitForViews(consistency)
        return try await self.query.run(query, maxRows: maxRows)
    }

    /// Waits until the views may answer a read of this consistency.
    func waitForViews(_ consistency: ReadConsistency) async throws {
        switch consistency {
        case .local:
            return
        case .leader:
            guard let index = try await consensus.leaderCommitIndex() else {
                let directions = raft.flatMap { raft in raft.status.leader.map { raft.directions(to: $0) } }
                throw NodeError(
                    .unavailable,
                    "\(configuration.nodeID) is not the leader: ask \(directions?.text ?? "the leader"), or use --consistency linearizable or local",
                    leaderAPI: directions?.api)
            }
            try await waitUntilApplied(index)
        case .linearizable:
            let index = try await consensus.readIndex()
            try await waitUntilApplied(index)
        }
    }
}
