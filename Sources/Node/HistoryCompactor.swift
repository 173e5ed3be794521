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
        while true {
            try await loop.sleep(for: checkEvery)
            while node.consensus.isLeader {
                let cutoff = Node.now() - Int64(retention / .milliseconds(1))
                // Up to 10,000 rows read per table: on GRDB's readers, not the event loop.
                let boundary = try await node.views.pool.read { db in
                    try ViewStore.historyCompactionBoundary(
                        olderThan: cutoff, limit: ViewStore.historyRowsPerCompaction, db)
                }
                guard let boundary else { break }
                if let reason = await node.memberWithoutHistoryCompaction() {
                    if heldBackBy != reason {
                        node.logger.warning(
                            "history older than \(Int64(retention / .seconds(1))) s is kept for now: \(reason)")
                    }
                    heldBackBy = reason
                    break
                }
                heldBackBy = nil
                let record = Record(at: Node.now(), .historyCompacted(HistoryCompacted(beforeIndex: boundary)))
                let range: ClosedRange<UInt64>
                do {
                    range = try await node.consensus.propose([record.encoded()])
                } catch let error as NodeError where error.code == .unavailable && !Task.isCancelled {
                    break  // leadership moved: the new leader compacts
                }
                _ = try await node.applied.wait(until: range.upperBound)
                node.logger.debug("history logged before index \(boundary) compacted (record \(range.upperBound))")
            }
        }
    }
}

extension Node {
    /// Why a `history.compacted` record may not be proposed now: a member that did not answer
    /// its status question, or whose views predate the record; nil when every member's know it.
    func memberWithoutHistoryCompaction() async -> String? {
        guard let raft else { return nil }
        let answers = await raft.otherMemberStatuses(timeout: .seconds(1))
        for (id, answer) in answers.sorted(by: { $0.key < $1.key }) {
            switch answer {
            case .failure(let error):
                return "member \(id) did not answer (\(error.message))"
            case .success(let status) where !ViewStore.knowsHistoryCompaction(schemaVersion: status.schemaVersion):
                return "member \(id) runs dwcp \(status.version), whose views cannot apply history.compacted records"
            case .success:
                continue
            }
        }
        return nil
    }
}
