import Store

/// The leader's own verify of the members' views (`dwcp serve --verify-every`,
/// ``PeriodicVerifier``): its outcome kept, logged and counted, and shown by
/// `GET /v1/cluster/verify/last`.
extension Node {
    /// Keeps `verify` as the last one, counts it, and logs what an operator must know: a member
    /// whose views differ (an error, with what to do), one that gave no digest, no marker made.
    func recordPeriodicVerify(_ verify: ViewsVerification) {
        lastPeriodicVerify.withLock { $0 = verify }
        metrics.countPeriodicVerify(verify)
        let index: UInt64
        let comparison: ViewsComparison
        switch verify.outcome {
        case .noMarker(let why):
            logger.warning("periodic verify: no marker could be proposed (\(why)); trying again soon")
            return
        case .compared(let compared):
            (index, comparison) = (compared.logIndex, compared)
        }
        var problems: [String] = []
        for (id, tables) in comparison.differingMembers {
            problems.append(
                "the views of \(id) differ from those most members share at log index \(index) (\(tables.joined(separator: ", "))): stop it and remove its DATA/views.sqlite, and it rebuilds them from its latest snapshot and its log as it starts (if they differ again, the damage is in that snapshot: remove the member, empty its data directory and add it again)"
            )
        }
        if !comparison.tablesWithoutMajority.isEmpty {
            problems.append(
                "no digest of \(comparison.tablesWithoutMajority.joined(separator: ", ")) at log index \(index) is shared by more than half of the \(comparison.answers.count) members (\(comparison.splitDescription)): which is wrong cannot be told (dwcp cluster verify shows each member's)"
            )
        }
        if !comparison.comparable {
            logger.info(
                "periodic verify at log index \(index): not compared, the members run schema versions \(comparison.schemaVersions.joined(separator: ", "))"
            )
        } else if !problems.isEmpty {
            for problem in problems { logger.error("periodic verify: \(problem)") }
        }
        let unanswered = comparison.unanswered
        if !unanswered.isEmpty {
            let which = unanswered.map { "\($0.id) (\($0.error ?? "no answer"))" }.joined(separator: "; ")
            logger.warning("periodic verify at log index \(index): no digest from \(which)")
        } else if comparison.agree {
            logger.info(
                "periodic verify at log index \(index): the \(comparison.answers.count) members' views are the same")
        }
    }

    /// This member stopped leading: its last verify no longer speaks for the region (the next
    /// leader's will), in the status and the metrics.
    func forgetPeriodicVerify() {
        lastPeriodicVerify.withLock { $0 = nil }
        metrics.forgetPeriodicVerify()
    }

    /// What `GET /v1/cluster/verify/last` answers: the leader's last verify of the members'
    /// views, or that none was made yet. Asked of a member that does not lead, refused naming the
    /// leader (the API sends the request on to it).
    public func periodicVerifyStatus() throws -> JSONValue {
        var fields: [(String, JSONValue)] = [("node_id", .string(configuration.nodeID))]
        guard let raft else {
            return .object(fields + [("replicated", .bool(false)), ("verified", .bool(false))])
        }
        let every = configuration.replication?.verifyEvery
        guard raft.isLeader else {
            let leader = raft.status.leader
            let directions = leader.map { raft.directions(to: $0) }
            throw NodeError(
                .unavailable,
                "\(configuration.nodeID) is not the leader: the leader keeps the last periodic verify; ask \(directions?.text ?? "it once the region has one")",
                leaderAPI: directions?.api)
        }
        fields.append(("replicated", .bool(true)))
        fields.append(("every", every.map { .string(DurationFlag.describe($0)) } ?? .null))
        guard let verify = lastPeriodicVerify.withLock({ $0 }) else {
            return .object(fields + [("verified", .bool(false))])
        }
        fields += [
            ("verified", .bool(true)), ("verified_by", .string(verify.verifiedBy)), ("at_ms", .int(verify.at)),
            ("seconds_ago", .int(max(0, (Node.now() - verify.at) / 1000))),
            ("outcome", .string(verify.verdict.rawValue)),
        ]
        switch verify.outcome {
        case .noMarker(let why):
            fields.append(("error", .string(why)))
        case .compared(let comparison):
            fields += [
                ("log_index", .int(Int64(comparison.logIndex))), ("members", .int(Int64(comparison.answers.count))),
                ("answered", .int(Int64(comparison.answered.count))),
                (
                    "differences",
                    .array(
                        comparison.differingMembers.map {
                            .object([("id", .string($0.id)), ("tables", .array($0.tables.map { .string($0) }))])
                        })
                ),
                ("tables_without_majority", .array(comparison.tablesWithoutMajority.map { .string($0) })),
                (
                    "unanswered",
                    .array(
                        comparison.unanswered.map {
                            .object([("id", .string($0.id)), ("error", .string($0.error ?? ""))])
                        })
                ),
                ("schema_versions", .array(comparison.schemaVersions.map { .string($0) })),
            ]
        }
        return .object(fields)
    }
}
