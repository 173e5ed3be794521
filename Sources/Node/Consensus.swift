import Store

/// How the node gets records into the committed log. The single-node implementation below commits
/// an entry once it is durable in the local log; the Raft driver (region replication) implements
/// the same seam and commits once a majority has it.
public protocol Consensus: Sendable {
    /// Proposes payloads as consecutive `.record` entries; returns their indexes once committed.
    /// `appliesOnce`: the payloads apply once however often they are proposed (an intent with a
    /// request id), so the node may send them again when a leader went away without saying whether
    /// it appended them, rather than fail the caller.
    /// `appended` is told where the entries sit as soon as the group knows (a region's leader
    /// before they commit, a member that forwarded them once the leader answers, a single node once
    /// they are durable), and again each time it proposes them anew (the node asks the apply loop
    /// for an intent's answer there: ``IntentAnswers``). The entries at those indexes may turn out
    /// to be another leader's.
    func propose(
        _ payloads: [[UInt8]], appliesOnce: Bool, appended: (ClosedRange<UInt64>) -> Void
    ) async throws -> ClosedRange<UInt64>
    /// Proposes a no-op entry that carries `payload` (the views skip it; every member meets it at
    /// the same index); returns its index once committed. Only the leader proposes one.
    func proposeNoop(payload: [UInt8]) async throws -> UInt64
    /// The highest committed index; waiters are woken as it moves.
    var committed: IndexWatermark { get }
    /// Whether this node may propose now (workers that write, like the scheduler, run on the leader).
    var isLeader: Bool { get }
    /// An index a linearizable read must see: the views answer it once they have applied this far.
    func readIndex() async throws -> UInt64
    /// On the leader, the index a `leader` read must see: its commit index once it has committed an
    /// entry of its own term (before that, a new leader's commit index may lag writes the previous
    /// leader acknowledged); nil on a member that does not lead.
    func leaderCommitIndex() async throws -> UInt64?
}

extension Consensus {
    /// A group whose leader never changes: its commit index whenever it leads.
    public func leaderCommitIndex() async throws -> UInt64? { isLeader ? committed.value : nil }

    /// ``propose(_:appliesOnce:appended:)`` for a caller that does not ask where the entries sit.
    public func propose(_ payloads: [[UInt8]], appliesOnce: Bool) async throws -> ClosedRange<UInt64> {
        try await propose(payloads, appliesOnce: appliesOnce, appended: { _ in })
    }

    /// Proposes payloads that would apply twice if proposed twice.
    public func propose(_ payloads: [[UInt8]]) async throws -> ClosedRange<UInt64> {
        try await propose(payloads, appliesOnce: false)
    }
}

/// A one-node group: an entry is committed as soon as the local log has it on disk. Concurrent
/// proposals share one synced write (the log's group commit).
public final class LocalConsensus: Consensus {
    public let log: LogStore
    public let committed: IndexWatermark
    /// The term this node writes its entries in (1 for a single node that never changes leader).
    public let term: UInt64

    public init(log: LogStore) {
        self.log = log
        // Everything in a single node's log was committed when it was written.
        committed = IndexWatermark(log.lastIndex)
        term = max(log.lastTerm, 1)
    }

    public var isLeader: Bool { true }

    /// One node is its own quorum: what it committed is all there is.
    public func readIndex() async throws -> UInt64 { committed.value }

    /// Tells `appended` once the entries are durable, before the commit index passes them. (A
    /// group commit makes several proposals durable at once: another of them may move the commit
    /// index past these first, and the apply loop may run before `appended` is told.)
    public func propose(
        _ payloads: [[UInt8]], appliesOnce: Bool, appended: (ClosedRange<UInt64>) -> Void
    ) async throws -> ClosedRange<UInt64> {
        let range = try await append(payloads, kind: .record)
        appended(range)
        committed.advance(to: range.upperBound)
        return range
    }

    public func proposeNoop(payload: [UInt8]) async throws -> UInt64 {
        let range = try await append([payload], kind: .noop)
        committed.advance(to: range.upperBound)
        return range.upperBound
    }

    /// Appends to the log; a full disk is said so (nothing was written, and the node goes on
    /// serving reads: the next intent after space is freed is written), not as LMDB's error.
    private func append(_ payloads: [[UInt8]], kind: LogEntry.Kind) async throws -> ClosedRange<UInt64> {
        do {
            return try await log.appendNext(term: term, kind: kind, payloads: payloads)
        } catch {
            guard let full = DiskSpace.blame(error, at: log.path) else { throw error }
            throw NodeError(
                .diskFull, "\(full): nothing was written; free space there and send it again", cause: error)
        }
    }
}
