import Logging
import NIOCore
import NIOPosix
import Replication
import Store

extension Node {
    /// Gives the region an id and the transport this member's: until the views hold one (or the
    /// entries committed after them: a follower may hold them back), looks every 200 ms; the leader then proposes a random one (`region.identified`) once every
    /// member's views can apply it, and every member, as its views apply it (or a snapshot that
    /// holds it), names it on its replication connections from then on (``ConnectionHello``).
    /// Returns once the transport has it.
    func identifyRegion() async throws {
        guard let raft else { return }
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var heldBackBy: String?
        while true {
            let appliedIndex = applied.value
            let known = try await views.pool.read { try ViewStore.regionID($0) }
            if let id = try known ?? raft.committedRegionID(after: appliedIndex) {
                raft.identify(regionID: id)
                logger.info("this region's id is \(ConnectionHello.described(id))")
                return
            }
            if raft.isLeader {
                let reason = await memberWhoseViewsLack("region.identified") {
                    ViewStore.knowsRegionIdentity(schemaVersion: $0)
                }
                if let reason, reason != heldBackBy {
                    // A member that does not answer yet is the usual case at a region's first start.
                    let level: Logger.Level = reason.contains("did not answer") ? .info : .notice
                    logger.log(level: level, "the region gets its id once every member's views can apply it: \(reason)")
                }
                heldBackBy = reason
                if reason == nil {
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
