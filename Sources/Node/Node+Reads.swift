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
                guard let directions else {
                    throw NodeError(
                        .unavailable,
                        "\(configuration.nodeID) is not the leader and knows none (an election is on, or too few members answer): retry, or use --consistency local"
                    )
                }
                throw NodeError(
                    .unavailable,
                    "\(configuration.nodeID) is not the leader: ask \(directions.text), or use --consistency linearizable or local",
                    leaderAPI: directions.api)
            }
            try await waitForViews(through: index)
        case .linearizable:
            let index = try await consensus.readIndex()
            try await waitForViews(through: index)
        }
    }

    /// How long a read waits for this member's views to reach the index it must see: a member
    /// in step applies it within milliseconds; one that lost its log or is cut off from the
    /// leader never would, and the reader is told instead of waiting for ever.
    static let readCatchUpTimeout = Duration.seconds(5)

    /// Waits until the views are applied through `index`, the read's index; unavailable when
    /// they do not get there within ``readCatchUpTimeout``.
    func waitForViews(through index: UInt64) async throws {
        guard try await waitUntilApplied(index, timeout: Self.readCatchUpTimeout) == nil else { return }
        let why =
            raft == nil || consensus.isLeader
            ? "its views apply slowly or have stopped (see its log)"
            : "it is behind the leader (catching up, or cut off from it); ask another member, or use --consistency local for what it has"
        throw NodeError(
            .unavailable,
            "\(configuration.nodeID)'s views are at index \(applied.value), short of the \(index) this read must see, and did not get there within \(Self.readCatchUpTimeout): \(why)"
        )
    }
}
