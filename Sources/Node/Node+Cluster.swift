import Replication
import Store

/// A membership change or leadership transfer asked for through the API.
public struct ClusterChangeRequest: Sendable, Codable {
    public var id: String
    public var address: String?
    public var learner: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, address, learner
    }
}

extension ClusterChangeRequest: APIRequestBody {
    static let fields = CodingKeys.allCases.map(\.stringValue)
}

extension LeaderTransferRequest: APIRequestBody {
    static let fields = CodingKeys.allCases.map(\.stringValue)
}

/// The body of `POST /v1/cluster/leader`: the voter to hand leadership to (none: the best placed).
public struct LeaderTransferRequest: Sendable, Codable {
    public var id: String?
    public init(id: String? = nil) { self.id = id }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id
    }
}

extension Node {
    var raft: RaftConsensus? { consensus as? RaftConsensus }

    /// What `dwcp cluster status` shows: every member of the region, each as it reports itself
    /// (role, term, last, commit and applied index, dwcp and schema version; asked over the
    /// replication port, `unreachable` with the reason when it does not answer within
    /// `timeout`; `asked: false` with a timeout of 0), and each member's lag: on the leader from
    /// its match index, elsewhere from the last indexes the leader and the member reported.
    public func clusterStatus(timeout: Duration = .seconds(1)) async -> JSONValue {
        guard let raft else {
            return .object([
                ("node_id", .string(configuration.nodeID)), ("replicated", .bool(false)),
                ("version", .string(Node.version)), ("schema_version", .string(ViewStore.schemaVersion)),
                // (`dwcp cluster verify --log-index` refuses an index past it, as in a region.)
                ("commit_index", .int(Int64(consensus.committed.value))), ("members", .array([])),
            ])
        }
        // (What the members acknowledged before they were asked: a report of a log shorter than
        // that is a lost log, while a later acknowledgement may pass a report in flight.)
        let acknowledgedBeforeAsking = raft.status.matches
        let answers = timeout > .zero ? await raft.otherMemberStatuses(timeout: timeout) : [:]
        let status = raft.status
        let local = raft.localMemberStatus()
        let lastIndex = Int64(status.lastIndex)
        // Asked of a member that does not lead: the leader's last index as the leader reported it.
        var leaderLast: UInt64?
        if let leader = status.leader, leader != configuration.nodeID, case .success(let reported) = answers[leader] {
            leaderLast = reported.lastIndex
        }
        var members: [JSONValue] = []
        for (id, address) in status.membership.all.sorted(by: { $0.key < $1.key }) {
            var fields: [(String, JSONValue)] = [("id", .string(id)), ("address", .string(address))]
            if let api = raft.apiAddress(of: id) { fields.append(("api", .string(api))) }
            // The region it said it was started in; one not this region's is cut off here.
            if let region = raft.region(of: id) { fields.append(("region", .string(region))) }
            // A founding not this member's: started with another --peer list, cut off here too.
            if let founding = raft.otherFounding(of: id) { fields.append(("other_founding", .string(founding))) }
            let answer = id == configuration.nodeID ? .success(local) : answers[id]
            switch answer {
            case .success(let member):
                fields += Self.fields(of: member) + [("reachable", .bool(true))]
            case .failure(let error):
                fields += [
                    ("role", .string(status.role(of: id))), ("reachable", .bool(false)),
                    ("error", .string(error.message)),
                ]
            case nil:
                // Not asked: the caller asked none (timeout 0), or the member joined meanwhile.
                fields += [("role", .string(status.role(of: id))), ("asked", .bool(false))]
            }
            // A member's own report of a log shorter than it acknowledged tells the same as the
            // leader's finding, which waits for the next entry sent to it (a member whose data
            // directory was emptied showed lag 0 in a quiet region).
            var lostLogEnd = status.lostLogs[id]
            if lostLogEnd == nil, let match = acknowledgedBeforeAsking[id], case .success(let member) = answer,
                member.lastIndex < match
            {
                lostLogEnd = member.lastIndex
            }
            if let end = lostLogEnd, let match = status.matches[id] {
                // It acknowledged `match` but its log ends at `end`: the lag is from there, and it
                // cannot catch up as it is (NodeError.rejoinRemedy).
                fields.append(("match_index", .int(Int64(match))))
                fields.append(("lag", .int(max(lastIndex - Int64(end), 0))))
                fields.append(
                    (
                        "lost_log",
                        .string(
                            "its log ends at \(end), below the \(match) it acknowledged: it lost its log and cannot catch up as it is; \(NodeError.rejoinRemedy(id))"
                        )
                    ))
            } else if let match = status.matches[id] {
                fields.append(("match_index", .int(Int64(match))))
                fields.append(("lag", .int(max(lastIndex - Int64(match), 0))))
            } else if let leaderLast, case .success(let member) = answer {
                let behind = leaderLast > member.lastIndex ? leaderLast - member.lastIndex : 0
                fields.append(("lag", .int(Int64(clamping: behind))))
            }
            members.append(.object(fields))
        }
        return .object(
            [
                ("node_id", .string(configuration.nodeID)), ("region", .string(configuration.region)),
                // Named on every replication connection (ConnectionHello): null until region.identified applies.
                ("region_id", raft.transport.regionID.map { .string(RegionIdentified.described($0)) } ?? .null),
                ("replicated", .bool(true)),
                // Removed from the region (its log's membership, or a leader, says so): its
                // members below are as it last knew them.
                ("removed", .bool(raft.wasRemoved)),
            ] + Self.fields(of: local)
                + [("members", .array(members))])
    }

    /// A member's status as JSON fields.
    private static func fields(of member: MemberStatus) -> [(String, JSONValue)] {
        [
            // Another member's numbers come off the network: clamped, never trapped on.
            ("role", .string(member.role)), ("term", .int(Int64(clamping: member.term))),
            ("leader", member.leader.isEmpty ? .null : .string(member.leader)),
            ("last_index", .int(Int64(clamping: member.lastIndex))),
            ("commit_index", .int(Int64(clamping: member.commitIndex))),
            ("applied_index", .int(Int64(clamping: member.appliedIndex))), ("version", .string(member.version)),
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

    /// Adds a member after asking whoever listens at its address (``RaftConsensus/probeNewMember(_:at:)``):
    /// refused when another node answers there; with a warning when nothing answers (not started
    /// yet, or a wrong address). Any other change is made as ``changeCluster(_:)`` makes it.
    public func addMember(
        _ change: RaftMembershipChange, probeTimeout: Duration = RaftConsensus.newMemberProbeTimeout
    ) async throws -> (index: UInt64, warning: String?) {
        let raft = try requireRaft()
        let (id, address): (String, String)
        switch change {
        case .addLearner(let newID, let newAddress), .addVoter(let newID, let newAddress):
            (id, address) = (newID, newAddress)
        case .promote, .remove: return (try await raft.changeMembership(change), nil)
        }
        var warning: String?
        switch await raft.probeNewMember(id, at: address, timeout: probeTimeout) {
        case .otherNode(let other):
            let whose =
                raft.status.membership.contains(other)
                ? "\(other) is a member of this region, at \(raft.status.membership.all[other] ?? "?")"
                : "\(other) is not a member of this region"
            throw NodeError(
                .invalid,
                "at \(address) listens \(other), not \(id) (\(whose)): check the address and port of \(id)'s --listen; nothing was changed"
            )
        case .silent(let why):
            warning =
                "nothing answered as \(id) at \(address) \(why.map { "(\($0))" } ?? "within \(probeTimeout.components.seconds) s"): if \(id) is not started yet, start it with --join --listen \(address); if it runs, check the address and port (dwcp cluster status shows whether it catches up)"
        case .answered, .notAsked:
            break
        }
        return (try await raft.changeMembership(change), warning)
    }

    /// Hands leadership to `target` (nil: the voter best placed to lead) and returns the member
    /// that leads once the transfer is done (within two seconds), with the term it leads in.
    public func moveLeadership(to target: String?) async throws -> (leader: String, term: UInt64) {
        try await requireRaft().moveLeadership(to: target, timeout: .seconds(2))
    }

    /// Tells the other members where this node's API listens, once it does: its `--api` host, or,
    /// when that is a wildcard (0.0.0.0, ::), the host the membership gives this node, which the
    /// others reach it at. Nothing is said when no such host is known, or when the API is on
    /// loopback and the region is not (the others could not reach it there).
    func advertiseAPI(port: Int) {
        guard let raft, let replication = configuration.replication, port > 0 else { return }
        let membershipHost =
            raft.status.membership.all[configuration.nodeID]
            .flatMap { Validation.hostAndPort($0)?.host } ?? replication.listenHost
        var host = configuration.apiHost
        if Validation.isWildcardHost(host) { host = membershipHost }
        guard !Validation.isWildcardHost(host), !(Self.isLoopback(host) && !Self.isLoopback(membershipHost)) else {
            logger.notice("not telling the other members where the API listens: \(host) is not an address they can use")
            return
        }
        if host.contains(":") && !host.hasPrefix("[") { host = "[\(host)]" }
        raft.advertiseAPI("\(host):\(port)")
    }

    private static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }
}
