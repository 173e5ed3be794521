import Store

/// What the Raft state machine asks its driver to do, collected since the last ``Raft/takeReady()``.
///
/// The driver does it in this order: send `messages` (they do not depend on this ready's writes);
/// persist `snapshot`, `truncateFrom`, `entries` and `hardState` and fsync; then send
/// `messagesAfterPersist`, call ``Raft/persisted(through:term:)`` and hand out `reads`.
/// `committed` holds only entries an earlier ready made durable, so the driver may apply them
/// before this ready's write, as the product's driver does.
public struct RaftReady: Sendable, Equatable {
    /// Leader traffic that may leave before the leader's own log write (appends, heartbeats).
    public var messages: [RaftMessage] = []
    /// A snapshot received from the leader to install (its data came with the message).
    public var snapshot: RaftSnapshotMeta?
    /// Delete the stored entries from this index on before appending `entries`.
    public var truncateFrom: UInt64?
    public var entries: [LogEntry] = []
    /// The term, vote and commit index, when the term or vote changed, or when this ready writes
    /// entries anyway (a commit index that moved alone waits for the next write).
    public var hardState: HardState?
    /// Messages that promise what was just persisted (votes, append acknowledgements).
    public var messagesAfterPersist: [RaftMessage] = []
    /// Committed entries to apply, in order.
    public var committed: [LogEntry] = []
    /// Linearizable reads whose index is known: serve each once the applied index reaches it.
    public var reads: [RaftReadState] = []
    /// Answers to proposals this follower forwarded to the leader.
    public var forwarded: [RaftForwardedProposal] = []
    /// The role, term or leader changed.
    public var statusChanged = false
    /// Entries the state machine let go of (a log replaced by a snapshot): the driver frees them
    /// away from its lock and its event loop (100,000 entries take 10–15 ms to free).
    public var released: [LogEntry] = []
    /// Followers whose logs now end below what they acknowledged, for the driver to report.
    public var lostLogs: [RaftLostLog] = []
    /// Messages dropped because no member sends them, for the driver to report.
    public var disregarded: [RaftDisregarded] = []

    public var isEmpty: Bool {
        messages.isEmpty && snapshot == nil && truncateFrom == nil && entries.isEmpty && hardState == nil
            && messagesAfterPersist.isEmpty && committed.isEmpty && reads.isEmpty && forwarded.isEmpty
            && !statusChanged && released.isEmpty && lostLogs.isEmpty && disregarded.isEmpty
    }
}

/// A message no member of the group sends, dropped as it came: an answer from a node this member
/// does not count a member (nothing it asked a member for), an acknowledgement of entries the
/// leader never had, or a removal notice from neither a member nor the leader. In plain TCP anyone
/// who reaches the replication port can send frames and a sender's name is not authenticated
/// (mutual TLS is the boundary): these checks keep such a frame from making a member take a later
/// term through an answer, from cutting a follower off, and from switching a member off; a
/// request (an append, a vote, a hand-over) under any name still counts as its sender's.
public struct RaftDisregarded: Sendable, Equatable {
    public var from: String
    public var kind: String
    public var term: UInt64
    public var cause: Cause
    /// Why, in words.
    public var reason: String

    public enum Cause: Sendable, Equatable {
        /// The sender is no member this one knows (nor its leader, for a removal notice).
        case notAMember
        /// An acknowledgement past the leader's last index.
        case pastTheLog
        /// A log index above ``Raft/largestAccepted``, a term above it by more than one step
        /// past the member's own (the member takes one step), or an entry of a later term than
        /// its message's: taken, it would leave the region too few terms to elect leaders in, or
        /// the log too few indexes to grow into.
        case outOfRange
    }

    public init(from: String, kind: String, term: UInt64, cause: Cause, reason: String) {
        self.from = from
        self.kind = kind
        self.term = term
        self.cause = cause
        self.reason = reason
    }
}

/// A follower that lost entries it had acknowledged as durable: its refusals say its log ends at
/// `lastIndex`, below the `acknowledged` index the leader counted it for (it was restarted on an
/// empty or older data directory). Raft cannot repair that: the leader never moves a member's
/// acknowledged index back, so the member stays where it is until it is removed and added anew.
/// Noticed after ``Raft/lostLogRefusals`` such refusals in a row (one could be a stale message),
/// and again every that many while it lasts.
public struct RaftLostLog: Sendable, Equatable {
    public var peer: String
    public var acknowledged: UInt64
    public var lastIndex: UInt64

    public init(peer: String, acknowledged: UInt64, lastIndex: UInt64) {
        self.peer = peer
        self.acknowledged = acknowledged
        self.lastIndex = lastIndex
    }
}

/// The answer to a linearizable read request: serve it at `index` (nil: it failed, ask again).
public struct RaftReadState: Sendable, Equatable {
    public var context: UInt64
    public var index: UInt64?

    public init(context: UInt64, index: UInt64?) {
        self.context = context
        self.index = index
    }
}

/// The leader's answer to a forwarded proposal: its entries start at `firstIndex` and were
/// appended in `term` (they are the caller's once that index commits with that term); nil: refused
/// (nothing was appended). `from` is the member that answered.
public struct RaftForwardedProposal: Sendable, Equatable {
    public var id: UInt64
    public var firstIndex: UInt64?
    public var term: UInt64
    public var from: String
    /// The leader refused it for good (``RaftMessage/Body/proposeRefused(id:)``): not to be sent
    /// again.
    public var refusedForGood: Bool

    public init(id: UInt64, firstIndex: UInt64?, term: UInt64, from: String, refusedForGood: Bool = false) {
        self.id = id
        self.firstIndex = firstIndex
        self.term = term
        self.from = from
        self.refusedForGood = refusedForGood
    }
}

/// Who a node is in its group right now.
public enum RaftRole: String, Sendable, Equatable {
    case follower, preCandidate, candidate, leader
}

/// A member's view of the group, for `dwcp cluster status`.
public struct RaftStatus: Sendable, Equatable {
    public var id: String
    public var role: RaftRole
    public var term: UInt64
    public var leader: String?
    public var lastIndex: UInt64
    public var committed: UInt64
    public var applied: UInt64
    public var membership: RaftMembership
    /// On the leader: each member's match index.
    public var matches: [String: UInt64]
    /// On the leader: the members found to have lost entries they had acknowledged, with where
    /// each said its log ends (``RaftLostLog``): they cannot catch up as they are.
    public var lostLogs: [String: UInt64] = [:]
    /// Set when a leader told this member that the membership it committed at this index leaves
    /// it out, which this member's own log does not show (``Raft/removalNotice``).
    public var toldRemovedAt: UInt64?

    /// The role `member` has as this status sees it, as `dwcp cluster status` names it: leader,
    /// learner, this member's own role (follower, candidate, preCandidate), else follower; `not a
    /// member` for one outside the membership (removed, or not yet added).
    public func role(of member: String) -> String {
        guard membership.contains(member), member != id || toldRemovedAt == nil else { return "not a member" }
        if member == leader { return "leader" }
        if membership.learners[member] != nil { return "learner" }
        return member == id ? role.rawValue : "follower"
    }
}
