import GRDB
import Scheduler
import Store

/// Reacts to applied records by placing VMs: the VMs waiting for a host are placed together as one
/// batch (``Placer/placeBatch(_:on:)``), each as a `vm.placed` record with its explanation, or, once
/// per reason, a `vm.unschedulable` record. Unschedulable VMs are tried again whenever hosts change
/// (added, removed, relabelled, capacity freed or taken). The decisions come from the pure
/// ``Placer``; this shell reads the views and proposes records.
struct SchedulerWorker: Sendable {
    let placer = Placer()

    func run(node: Node) async throws {
        // Not before the views' values are known to be ones the applier writes (a hand-edited or
        // damaged file would stop the process at the first odd value it reads; the placement
        // inputs wait too, but the lookup below comes first).
        _ = try await node.snapshots.viewsChecked.wait(until: 1)
        var seen: UInt64 = 0
        var placementIndexSeen: UInt64?
        var idle = false
        while true {
            if idle { seen = try await node.applied.wait(until: seen + 1) }
            idle = true
            // Only the leader writes placements, so only it decides them (a new leader's first
            // entry wakes it). Most commits give it nothing to do: a lookup on the waiting-VMs
            // index says so without reading the hosts.
            guard node.consensus.isLeader else { continue }
            let (pending, unschedulable, placementIndex) = try node.views.read { db in
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT EXISTS (SELECT 1 FROM vms WHERE host IS NULL AND actual_state = 'pending') AS pending,
                                   EXISTS (SELECT 1 FROM vms WHERE host IS NULL AND actual_state = 'unschedulable')
                                       AS unschedulable,
                                   placement_index FROM dwcp_state WHERE id = 1
                            """))
                let pending: Bool = row?["pending"] ?? false
                let unschedulable: Bool = row?["unschedulable"] ?? false
                return (
                    pending, unschedulable,
                    try ViewStore.logIndex(row?["placement_index"] ?? 0, "dwcp_state.placement_index")
                )
            }
            guard pending || (unschedulable && placementIndex != placementIndexSeen) else { continue }
            let inputs = try await node.placementInputs(
                waitingStates: ["pending", "unschedulable"], includePlaced: false)
            let retryUnschedulable = inputs.placementIndex != placementIndexSeen
            placementIndexSeen = inputs.placementIndex
            let waiting = inputs.waiting.filter { $0.actualState == "pending" || retryUnschedulable }
            guard !waiting.isEmpty else { continue }
            let decisions = try await Node.placeBatch(waiting.map(\.request), on: inputs.hosts, placer: placer)
            let at = Node.now()
            var records: [[UInt8]] = []
            for (vm, decision) in zip(waiting, decisions) {
                let explanation = decision.explanation.json
                if let host = decision.host {
                    records.append(
                        Record(
                            at: at,
                            .vmPlaced(
                                VMPlaced(
                                    vm: vm.request.vm, host: host, explanation: explanation,
                                    createdIndex: vm.createdIndex))
                        ).encoded())
                } else if vm.actualState != "unschedulable"
                    || Placer.reasonKind(vm.reason) != Placer.reasonKind(decision.reason)
                {
                    records.append(
                        Record(
                            at: at,
                            .vmUnschedulable(
                                VMUnschedulable(
                                    vm: vm.request.vm, reason: decision.reason, explanation: explanation,
                                    createdIndex: vm.createdIndex))
                        ).encoded())
                }
            }
            guard !records.isEmpty else { continue }
            let range: ClosedRange<UInt64>
            do {
                range = try await node.consensus.propose(records)
            } catch let error as NodeError where error.code == .unavailable && !Task.isCancelled {
                // Leadership moved; the new leader places them.
                continue
            }
            // Decide again once our own decisions are in the views (some may have been refused).
            seen = try await node.applied.wait(until: range.upperBound)
            idle = false
        }
    }
}
