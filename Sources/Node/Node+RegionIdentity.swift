import Logging
import NIOCore
import NIOPosix
import Replication
import Store

extension Node {
    /// Gives the region an id: until this member names one, the leader (whichever member leads)
    /// proposes a random one (`region.identified`) once every member's views can apply it,
    /// looking again every 200 ms. Members name it as soon as it commits (``RaftConsensus``'s
    /// driver reads it from the committed entries, a snapshot, or the views at start) on their
    /// replication connections (``ConnectionHello``). Returns once this member names it.
    func identifyRegion() async throws {
        guard let raft else { return }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var heldBackBy: MembersHoldBack?
        let start = ContinuousClock.now
        var toldLate = false
        while !raft.namesRegion {
            if raft.isLeader {
                let reason = await memberWhoseViewsLack("region.identified") {
                    ViewStore.knowsRegionIdentity(schemaVersion: $0)
                }
                // A member that does not answer yet is the usual case at a region's first start:
                // said at notice when it lasts a minute, or when it is a version.
                let late = start.duration(to: .now) > .seconds(60)
                if let reason, reason != heldBackBy || (late && !toldLate) {
                    let level: Logger.Level = reason.silence && !late ? .info : .notice
                    logger.log(
                        level: level,
                        "the region gets its id (docs/replication.md, \"The region id\") once every member's views can apply it: \(reason)"
                    )
                    toldLate = late
                }
                heldBackBy = reason
                if reason == nil, !raft.namesRegion {
                    let record = Record(
                        at: Node.now(), .regionIdentified(RegionIdentified(regionID: .random(in: 1...UInt64.max))))
                    do {
                        let range = try await consensus.propose([record.encoded()], appliesOnce: false)
                        _ = try await applied.wait(until: range.upperBound)
                        continue
                    } catch let error as CancellationError {
                        throw error
                    } catch {
                        // Leadership moved (the next leader proposes one), or no quorum: again later.
                        if !Task.isCancelled { logger.info("the region's id was not proposed: \(error); trying again") }
                    }
                }
            }
            try await loop.sleep(for: .milliseconds(200))
        }
    }
}
