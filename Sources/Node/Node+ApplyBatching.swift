import NIOCore
import NIOPosix

/// Followers apply in batches.
///
/// A follower that finds only a few committed entries to apply waits up to
/// ``ReplicationConfiguration/followerApplyDelay`` for more, and applies them in one transaction.
/// Each view page the entries touch then goes to SQLite's WAL once per batch instead of once per
/// entry. At one client that cut a follower's CPU per write by about 30 %. The WAL also grew far
/// less between checkpoints, and a checkpoint's fsync, which the log's fsyncs wait behind, took
/// with it most of the 1-client p99 (BENCHMARKS.md, "Followers apply in batches").
///
/// Nothing on the node waits for a held-back entry because of this. Whatever needs the views at
/// an index waits through ``waitUntilApplied(_:)``, which asks the apply loop for that index
/// first. That covers an intent's answer, a linearizable or leader read, a batch of VMs, the host
/// agent and the wait for a placement. The leader never holds entries back: its clients wait
/// for them. Background readers of the views on a follower (the console's follow, `GET
/// /v1/cluster`'s applied index, the checkpoint and snapshot loops) see the delay.
extension Node {
    /// Returns once the views have applied `index`, asking a follower's apply loop not to hold it
    /// back; returns the applied index then.
    /// (Asking for an index already applied changes nothing: the demand is then at or below it.)
    @discardableResult
    public func waitUntilApplied(_ index: UInt64) async throws -> UInt64 {
        applyDemand.advance(to: index)
        return try await applied.wait(until: index)
    }

    /// ``waitUntilApplied(_:)`` that gives up after `timeout`, returning nil.
    func waitUntilApplied(_ index: UInt64, timeout: Duration) async throws -> UInt64? {
        applyDemand.advance(to: index)
        return try await applied.wait(until: index, timeout: timeout)
    }

    /// The index the apply loop should apply through, given what is committed. A follower
    /// with fewer than ``inlineApplyLimit`` entries to apply, none of them asked for, first waits
    /// for whichever comes first: the delay, that many entries, someone asking, or this node
    /// becoming the leader (its first entry as leader commits, and the loop finds it leads).
    func gatherFollowerBatch(committed target: UInt64) async throws -> UInt64 {
        let delay = configuration.replication?.followerApplyDelay ?? .zero
        let limit = UInt64(Self.inlineApplyLimit)
        // Read once: a snapshot install moves the applied index past the commit index it read.
        let appliedIndex = applied.value
        guard delay > .zero, target > appliedIndex, target - appliedIndex < limit,
            applyDemand.value <= appliedIndex, !consensus.isLeader
        else { return target }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // On an event loop's own timer: a follower at low load sleeps here a hundred times a
            // second (see `EventLoop.sleep`).
            let loop = MultiThreadedEventLoopGroup.singleton.any()
            group.addTask { try await loop.sleep(for: delay) }
            group.addTask {
                var seen = target
                while seen < appliedIndex + limit, !self.consensus.isLeader {
                    seen = try await self.consensus.committed.wait(until: seen + 1)
                }
            }
            group.addTask { _ = try await self.applyDemand.wait(until: appliedIndex + 1) }
            _ = try await group.next()
            group.cancelAll()
        }
        return consensus.committed.value
    }
}
