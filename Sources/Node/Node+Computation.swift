import NIOPosix
import Scheduler

extension Node {
    /// A batch placement runs on NIO's thread pool when ``Placer/estimatedDuration(_:hostCount:)``
    /// says it takes longer than this; below it the trip to another thread and back would cost a
    /// good part of the work. (One VM on 64 hosts: about 0.1 ms; one VM on 10,000 hosts or
    /// `vm create --count 1000` on 10: 20–120 ms, which inline would stop the node's sockets.)
    static let inlinePlacementLimit = Duration.microseconds(200)
    /// Rebalancing runs on NIO's thread pool above this many host evaluations (placed VMs × hosts).
    static let inlineRebalanceEvaluations = 10_000
    /// A batch of more VMs than this (`vm create --count`, up to 1,000) is validated, looked up
    /// and answered on NIO's thread pool: each VM costs tens of microseconds of lookups and JSON,
    /// and 1,000 of them inline held the event loop for over 100 ms.
    static let inlineBatchVMs = 64
    /// A query's answer is turned into JSON on NIO's thread pool above this many cells (rows ×
    /// columns); a `dwcp sql` answer may hold 100,000 rows.
    static let inlineResultCells = 2_000

    /// ``Placer/placeBatch(_:on:)``, on NIO's thread pool when the batch is large (the
    /// scheduler's rounds and `plan` both place this way).
    static func placeBatch(_ requests: [PlacementRequest], on hosts: [HostCapacity], placer: Placer = Placer())
        async throws -> [PlacementDecision]
    {
        try await compute(inline: placesInline(requests, hostCount: hosts.count)) {
            placer.placeBatch(requests, on: hosts)
        }
    }

    /// Whether ``placeBatch(_:on:placer:)`` places these VMs on the caller's thread.
    static func placesInline(_ requests: [PlacementRequest], hostCount: Int) -> Bool {
        Placer.estimatedDuration(requests, hostCount: hostCount) <= inlinePlacementLimit
    }

    /// Runs pure CPU work whose cost grows with the fleet (placing a batch of VMs, planning a
    /// rebalance, a large query's JSON) where it does not hold up the event loop: inline when the
    /// caller says it is small, else on NIO's thread pool. With one event loop per node
    /// (docs/architecture.md, Threads), a batch of 2,000 VMs over 10,000 hosts placed inline would
    /// stop the node's sockets, Raft's heartbeats included, for a fraction of a second.
    static func compute<Value: Sendable>(inline: Bool, _ work: @escaping @Sendable () -> Value) async throws
        -> Value
    {
        if inline { return work() }
        return try await NIOThreadPool.singleton.runIfActive(work)
    }

    /// ``compute(inline:_:)`` for work that throws (a batch's lookups in the views).
    static func compute<Value: Sendable>(inline: Bool, throwing work: @escaping @Sendable () throws -> Value)
        async throws -> Value
    {
        try await compute(inline: inline) { Result { try work() } }.get()
    }

}
