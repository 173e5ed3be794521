import NIOPosix
import Replication
import Store
import Synchronization

extension RaftConsensus {
    /// Every `snapshotEvery` applied entries: copy the views into a snapshot, then compact the Raft
    /// log and the LMDB log behind it. Runs beside the ready loop, so replication goes on meanwhile.
    /// One is also taken at once when the one to send was found damaged or gone
    /// (``snapshotRetakes``), replacing a file at the same index.
    func takeSnapshots() async throws {
        var retakesSeen = snapshotRetakes.value
        var missing = snapshots.missingBehindLog(state.withLock { $0.snapshotMeta.index })
        while true {
            let base = state.withLock { $0.snapshotMeta.index }
            let seen = retakesSeen
            let retake = try await withThrowingTaskGroup(of: Bool.self) { group in
                if missing { return true }
                group.addTask { [self] in
                    _ = try await snapshots.applied.wait(until: base + snapshotEvery)
                    return false
                }
                group.addTask { [self] in
                    _ = try await snapshotRetakes.wait(until: seen + 1)
                    return true
                }
                defer { group.cancelAll() }
                return try await group.next() ?? false
            }
            missing = false
            // A snapshot installed from the leader meanwhile moved the base: count from there.
            guard retake || state.withLock({ $0.snapshotMeta.index }) == base else { continue }
            // What this copy covers: a retake asked for while it is taken asks for a later one.
            retakesSeen = snapshotRetakes.value
            let index = try await snapshots.take(replacing: retake)
            metrics.snapshotsTaken.increment()
            // After a restart the views can be ahead of what Raft has applied (the commit index it
            // saved is a hint): compact once it has caught up with the copy, rather than refuse
            // and copy again at once, over and over while no leader is heard. (Not `committed`:
            // the node moved that to the views' applied index as it started.)
            _ = try await handedOver.wait(until: index)
            // The dropped entries leave the lock (the event loop steps messages under it) and are
            // freed on NIO's thread pool (this task runs on the event loop): 10-15 ms per 100,000.
            var dropped: [LogEntry] = []
            let compacted = state.withLock { raft in
                dropped = raft.compact(through: index)
                return raft.snapshotMeta
            }
            DroppedEntries.free(&dropped)
            guard compacted.index == index else {
                // A snapshot from the leader came meanwhile; this copy is not needed. (Files are
                // pruned behind the log's snapshot on disk only: the one that came may not be
                // there yet, and its file must stay.)
                snapshots.prune(behind: log.snapshot.index)
                continue
            }
            try await log.compact(through: index, term: compacted.term)
            snapshots.prune(behind: log.snapshot.index)
            logger.info("\(group): views snapshot at \(index); the log now starts at \(index + 1)")
        }
    }

    /// Streams the snapshot a `.snapshot` message names: its chunks, then the message.
    func stream(_ message: RaftMessage) async {
        guard case .snapshot(let meta) = message.body else { return }
        let peer = message.to
        guard let address = addresses.withLock({ $0[peer] }) else {
            logger.warning("\(group): no address for \(peer): snapshot \(meta.index) not sent")
            return
        }
        // A send that waited behind another transfer while a newer snapshot replaced this one:
        // Raft sends the newer one next time.
        guard meta.index >= state.withLock({ $0.snapshotMeta.index }) else {
            logger.debug("\(group): snapshot \(meta.index) was replaced before it could go to \(peer)")
            return
        }
        do {
            try await snapshots.checkBeforeSending(meta.index)
            // Whole again (a new copy at this index): damage found later asks for a retake again.
            snapshotsRetaken.withLock { _ = $0.remove(meta.index) }
        } catch {
            // Not sent: the next try (after Raft's back-off) finds the new one. One retake for
            // each snapshot found so, however many sends were waiting with it.
            guard snapshotsRetaken.withLock({ $0.insert(meta.index).inserted }) else {
                logger.error("\(group): \(error); not sent to \(peer)")
                return
            }
            logger.error("\(group): \(error); not sent to \(peer): taking a new snapshot from the views")
            snapshotRetakes.advance(to: snapshotRetakes.value + 1)
            return
        }
        do {
            var chunks = 0
            try await snapshots.sendChunks(of: meta.index, term: meta.term, from: nodeID, to: peer) { chunk in
                chunks += 1
                return transport.sendTellingWhenWritten(RaftFrame(group: group, chunk: chunk), to: address)
            }
            transport.send(RaftFrame(group: group, message: message), to: address)
            metrics.snapshotsSent.increment()
            logger.info("\(group): sent views snapshot \(meta.index) to \(peer) in \(chunks) chunks")
        } catch {
            logger.warning("\(group): could not send snapshot \(meta.index) to \(peer): \(error)")
        }
    }

    /// Whether the data of the snapshot a `.snapshot` message names has arrived whole. Raft is told
    /// about it only then; otherwise the message is dropped and the leader tries again.
    func snapshotDataArrived(_ meta: RaftSnapshotMeta) -> Bool {
        if snapshots.hasReceived(meta.index) { return true }
        // A snapshot this node already has through its log needs no data (Raft answers at once).
        return state.withLock { meta.index <= $0.committed }
    }
}

/// Log entries on their way to be freed on NIO's thread pool, away from the state machine's lock
/// and the event loops (100,000 entries take 10–15 ms to free).
final class DroppedEntries: Sendable {
    private let entries = Mutex<[LogEntry]>([])

    /// Takes `entries` (leaving it empty) and frees them on NIO's thread pool.
    static func free(_ entries: inout [LogEntry]) {
        guard !entries.isEmpty else { return }
        let box = DroppedEntries()
        box.entries.withLock { swap(&$0, &entries) }
        NIOThreadPool.singleton.submit { _ in box.entries.withLock { $0 = [] } }
    }
}
