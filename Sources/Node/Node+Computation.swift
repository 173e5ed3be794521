import NIOPosix
import Scheduler

extension Node {
    /// Placement and rebalancing run on NIO's thread pool above this many host evaluations (VMs ×
    /// hosts). Below it they take well under a millisecond (bench/placement: about 2 ns per host
    /// evaluated, up to 28 orderings of a small batch), less than the trip to another thread and
    /// back.
    static let inlinePlacementEvaluations = 10_000
    /// A query's answer is turned into JSON on NIO's thread pool above this many cells (rows ×
    /// columns); a `dwcp sql` answer may hold 100,000 rows.
    static let inlineResultCells = 2_000

    /// ``Placer/placeBatch(_:on:)``, on NIO's thread pool when the batch is large (the
    /// scheduler's rounds and `plan` both place this way).
    static func placeBatch(_ requests: [PlacementRequest], on hosts: [HostCapacity], placer: Placer = Placer())
        async throws -> [PlacementDecision]
    {
        try await compute(inline: requests.count * hosts.count <= inlinePlacementEvaluations) {
            placer.placeBatch(requests, on: hosts)
        }
    }

    /// Runs pure CPU work whose cost grows with the fleet (placing a batch of VMs, planning a
    /// rebalance, a large query's JSON) where it does not hold up the event loop: inline when the
    /// caller says it is small, else on NIO's thread pool. With one event loop per node
    /// (docs/architecture.md, Threads), a batch of 2,000 VMs over 10,000 hosts placed inline would
    /// stop the node's sockets, Raft's heartbeats included, for a fraction of a second.
    static func compute<Result: Sendable>(inline: Bool, _ work: @escaping @Sendable () -> Result) async throws
        -> Result
    {
        if inline { return work() }
        return try await NIOThreadPool.singleton.runIfActive(work)
    }
}
