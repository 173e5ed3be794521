import Store

/// A message between the members of one Raft group. `term` is the sender's term (for a pre-vote,
/// the term it would campaign in).
public struct RaftMessage: Sendable, Equatable {
    public var from: String
    public var to: String
    public var term: UInt64
    public var body: Body

    public init(from: String, to: String, term: UInt64, body: Body) {
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }

    /// What a message says.
    public enum Body: Sendable, Equatable {
        /// Would you vote for me? Sent before raising the term (pre-vote).
        case preVote(lastIndex: UInt64, lastTerm: UInt64)
        case preVoteResponse(granted: Bool)
        /// Vote for me in `term`. `transfer` is set when the leader handed over (leadership transfer),
        /// which lets voters ignore the lease of the leader they still hear from.
        case vote(lastIndex: UInt64, lastTerm: UInt64, transfer: Bool)
        case voteResponse(granted: Bool)
        /// Entries after `prevIndex` (whose term is `prevTerm`), and the leader's commit index.
        case append(prevIndex: UInt64, prevTerm: UInt64, entries: [LogEntry], commit: UInt64)
        /// `accepted`: the follower's log matches the leader's through `index`.
        /// Otherwise: it rejected the append at `index`; `hintIndex`/`hintTerm` are where the
        /// leader should look next (the follower's last index with a term ≤ the probed term).
        case appendResponse(accepted: Bool, index: UInt64, hintIndex: UInt64, hintTerm: UInt64)
        /// The leader is alive; `commit` is what the follower may commit; `readContext` (0 = none)
        /// asks the follower to confirm leadership for pending linearizable reads.
        case heartbeat(commit: UInt64, readContext: UInt64)
        case heartbeatResponse(readContext: UInt64)
        /// Install the snapshot described; the data travels beside the message (the transport
        /// streams it in checksummed chunks).
        case snapshot(RaftSnapshotMeta)
        /// Start an election now (the leader is handing over to you).
        case timeoutNow
        /// A follower asks the leader for a read index for its request `context`.
        case readIndex(context: UInt64)
        /// The read index for `context`; 0 if the leader could not serve it.
        case readIndexResponse(context: UInt64, index: UInt64)
        /// A follower forwards a client's proposal to the leader under `id` (the follower's own
        /// number for it), as etcd's MsgProp does.
        case propose(id: UInt64, payloads: [[UInt8]])
        /// The leader appended forwarded proposal `id` from `index` on, in the message's term;
        /// `index` 0: it refused (it no longer leads, or is handing leadership over).
        case proposeResponse(id: UInt64, index: UInt64)
        /// The leader will not take forwarded proposal `id` from anyone, now or later: the sender
        /// is not a member, or a payload is no record the leader reads (a member newer than it).
        /// Not "not now" (`proposeResponse` with index 0): the follower fails it at once.
        case proposeRefused(id: UInt64)
        /// The membership the leader committed at `index` leaves the receiver out. A leader sends it
        /// to a removed member that still campaigns when it cannot send it the entries through its
        /// removal (the log before them is compacted, or the member's log does not match there).
        case removed(index: UInt64)
    }
}

extension RaftMessage {
    /// The largest log index this message would have its receiver keep: the last of the entries
    /// it appends, or the snapshot it installs (0 for other messages).
    var largestIndex: UInt64 {
        switch body {
        case .append(let prevIndex, _, let entries, _): max(prevIndex, entries.last?.index ?? 0)
        case .snapshot(let meta): meta.index
        default: 0
        }
    }

    /// Whether an entry or the snapshot this message carries claims a later term than the message
    /// itself: a leader sends only entries of its own term or earlier ones.
    var carriesLaterTerm: Bool {
        switch body {
        case .append(_, let prevTerm, let entries, _):
            prevTerm > term || entries.contains { $0.term > term }
        case .snapshot(let meta): meta.term > term
        default: false
        }
    }
}

/// What describes a snapshot: the last index and term it covers and the membership at that index.
public struct RaftSnapshotMeta: Sendable, Equatable {
    public var index: UInt64
    public var term: UInt64
    public var membership: RaftMembership

    public init(index: UInt64, term: UInt64, membership: RaftMembership) {
        self.index = index
        self.term = term
        self.membership = membership
    }
}

extension RaftMessage.Body {
    /// An answer to what only a candidate or a leader asks, and only of its members: votes and
    /// acknowledgements.
    var isAnswer: Bool {
        switch self {
        case .preVoteResponse, .voteResponse, .appendResponse, .heartbeatResponse: true
        default: false
        }
    }

    /// A short name for logs and metrics.
    public var name: String {
        switch self {
        case .preVote: "preVote"
        case .preVoteResponse: "preVoteResponse"
        case .vote: "vote"
        case .voteResponse: "voteResponse"
        case .append: "append"
        case .appendResponse: "appendResponse"
        case .heartbeat: "heartbeat"
        case .heartbeatResponse: "heartbeatResponse"
        case .snapshot: "snapshot"
        case .timeoutNow: "timeoutNow"
        case .readIndex: "readIndex"
        case .readIndexResponse: "readIndexResponse"
        case .propose: "propose"
        case .proposeResponse: "proposeResponse"
        case .proposeRefused: "proposeRefused"
        case .removed: "removed"
        }
    }
}
