/// What a member of a group says about itself when another member asks (`dwcp cluster status`
/// shows every member's): its place in the group, how far its log, commit and views have come,
/// and which dwcp it runs.
public struct MemberStatus: Sendable, Equatable {
    /// leader, follower, learner, candidate or preCandidate, as the member sees itself.
    public var role: String
    /// The leader it follows; empty when it knows none.
    public var leader: String
    public var term: UInt64
    public var lastIndex: UInt64
    public var commitIndex: UInt64
    /// How far its SQL views have applied the log.
    public var appliedIndex: UInt64
    /// Its dwcp's version (release and commit, `0.1.0+5bcbd0a77b31`) and its views' schema
    /// version: during a rolling upgrade they tell the members' builds apart.
    public var version: String
    public var schemaVersion: String

    public init(
        role: String, leader: String, term: UInt64, lastIndex: UInt64, commitIndex: UInt64, appliedIndex: UInt64,
        version: String, schemaVersion: String
    ) {
        self.role = role
        self.leader = leader
        self.term = term
        self.lastIndex = lastIndex
        self.commitIndex = commitIndex
        self.appliedIndex = appliedIndex
        self.version = version
        self.schemaVersion = schemaVersion
    }
}

/// A question or an answer about a member's status, on the replication port beside Raft's own
/// messages. `id` pairs an answer with its question.
public struct MemberStatusExchange: Sendable, Equatable {
    public var from: String
    public var to: String
    public var id: UInt64
    /// nil in a question; the sender's status in an answer.
    public var status: MemberStatus?

    public init(from: String, to: String, id: UInt64, status: MemberStatus?) {
        self.from = from
        self.to = to
        self.id = id
        self.status = status
    }
}
