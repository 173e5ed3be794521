import GRDB
import Logging
import NIOCore
import NIOPosix
import Store

/// Keeps the views' history (`intents`, `vm_events`, `vm_starts`, `placements`) to a window:
/// the leader looks every ``checkEvery`` for rows logged longer than `retention` ago and proposes
/// a `history.compacted` record below them, which every member applies alike. One record takes at
/// most `ViewStore.historyRowsPerCompaction` rows of each table, so an apply stays short (and
/// members apply it off their event loop); a backlog takes several records in a row. A request id is recognised as a retry while its intent is in the window.
///
/// The record is proposed only while every member's views know it (schema 008 and later): a member
/// of an earlier dwcp would stop at a record type it cannot read. A member that does not answer
/// holds compaction back too, since it may come back as an earlier dwcp.
struct HistoryCompactor: Sendable {
    let retention: Duration

    /// A tenth of the retention, between 100 ms and a minute.
    var checkEvery: Duration { min(max(retention / 10, .milliseconds(100)), .seconds(60)) }

    func run(node: Node) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var heldBackBy: String?
        // The applied index at the previous look: the boundary never passes it, so nothing
        // applied within the last round goes, however the proposers' clocks stamped it (an
        // intent's answer reads its row right after the apply). Every member samples it, so a
        // new leader has one at its first round.
        var appliedBefore: UInt64?
        while true {
            try await loop.sleep(for: checkEvery)
            let applied = node.applied.value
            defer { appliedBefore = applied }
            var reason: String?
            if let appliedBefore, node.consensus.isLeader {
                do {
                    reason = try await compactOldHistory(node: node, below: Int64(appliedBefore) + 1)
                } catch let error as CancellationError {
                    throw error
                } catch {
                    // Leadership moved (the new leader compacts), or a read failed: the next round
                    // looks again. Compaction is housekeeping; it never stops the node.
                    if !Task.isCancelled { node.logger.info("history compaction: \(error); trying again later") }
                }
            }
            node.metrics.historyCompactionHeldBack.record(reason == nil ? 0 : 1)
            if let reason, reason != heldBackBy {
                node.logger.warning(
                    "history older than \(DurationFlag.describe(retention)) is kept for now: \(reason)")
            }
            heldBackBy = reason
        }
    }

    /// Proposes `history.compacted` records, one after another, until no history older than the
    /// retention is left below `cap`; returns why it may not (a member), nil once done. Every
    /// member is asked once, before the first record.
    func compactOldHistory(node: Node, below cap: Int64) async throws -> String? {
        var membersAsked = false
        while node.consensus.isLeader {
            let cutoff = Node.now() - Int64(retention / .milliseconds(1))
            // Up to 10,000 rows read per table: on GRDB's readers, not the event loop.
            let boundary = try await node.views.pool.read { db in
                try ViewStore.historyCompactionBoundary(
                    olderThan: cutoff, limit: ViewStore.historyRowsPerCompaction, atMost: cap, db)
            }
            guard let boundary else { return nil }
            if !membersAsked {
                if let reason = await node.memberWithoutHistoryCompaction() { return reason }
                membersAsked = true
            }
            let record = Record(at: Node.now(), .historyCompacted(HistoryCompacted(beforeIndex: boundary)))
            let range = try await node.consensus.propose([record.encoded()])
            _ = try await node.applied.wait(until: range.upperBound)
            node.metrics.historyCompactions.increment()
            node.logger.debug("history logged before index \(boundary) compacted (record \(range.upperBound))")
        }
        return nil
    }
}
