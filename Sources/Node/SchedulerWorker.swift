import GRDB
import Scheduler
import Store

/// Reacts to applied records by placing VMs: every VM waiting for a host gets a placement record
/// (or, once, an unschedulable record with the reason); unschedulable VMs are tried again whenever
/// the fleet's capacity changes. The decisions come from the pure ``Placer``; this shell reads the
/// views and proposes records.
struct SchedulerWorker: Sendable {
    let placer = Placer()

    /// A VM without a host, as read from the views.
    struct WaitingVM: Sendable {
        var request: PlacementRequest
        var actualState: String
        var reason: String
    }

    func run(node: Node) async throws {
        var seen: UInt64 = 0
        var capacitySeen = ""
        var idle = false
        while true {
            if idle { seen = try await node.applied.wait(until: seen + 1) }
            idle = true
            // Sendable results only: with a non-Sendable one GRDB would pick its blocking `read`.
            let previousCapacity = capacitySeen
            let (waiting, hosts, capacity) = try await node.views.pool.read { db in
                let capacity =
                    try String.fetchOne(
                        db, sql: "SELECT count(*) || '/' || coalesce(max(updated_index), 0) FROM hosts") ?? ""
                let retryUnschedulable = capacity != previousCapacity
                let waiting = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT name, region, cpus, memory_bytes, actual_state, reason FROM vms
                        WHERE host IS NULL AND (actual_state = 'pending' OR (? AND actual_state = 'unschedulable'))
                        ORDER BY created_index
                        """, arguments: [retryUnschedulable]
                ).map {
                    WaitingVM(
                        request: PlacementRequest(
                            vm: $0["name"], region: $0["region"], cpus: $0["cpus"], memoryBytes: $0["memory_bytes"]),
                        actualState: $0["actual_state"], reason: $0["reason"])
                }
                let hosts = try Row.fetchAll(
                    db,
                    sql:
                        "SELECT name, region, state, cpus, memory_bytes, cpus_used, memory_used_bytes FROM hosts ORDER BY name"
                ).map {
                    HostCapacity(
                        name: $0["name"], region: $0["region"], state: $0["state"], cpus: $0["cpus"],
                        memoryBytes: $0["memory_bytes"], cpusUsed: $0["cpus_used"],
                        memoryUsedBytes: $0["memory_used_bytes"])
                }
                return (waiting, hosts, capacity)
            }
            capacitySeen = capacity
            guard !waiting.isEmpty else { continue }
            let decisions = placer.place(waiting.map(\.request), on: hosts)
            let at = Node.now()
            var records: [[UInt8]] = []
            for (waitingVM, decision) in zip(waiting, decisions) {
                let vm = waitingVM.request.vm
                if let host = decision.host {
                    records.append(
                        Record(at: at, .vmPlaced(VMPlaced(vm: vm, host: host, explanation: decision.explanation.json)))
                            .encoded())
                } else if waitingVM.actualState != "unschedulable" || waitingVM.reason != decision.reason {
                    records.append(
                        Record(at: at, .vmUnschedulable(VMUnschedulable(vm: vm, reason: decision.reason))).encoded())
                }
            }
            guard !records.isEmpty else { continue }
            let range = try await node.consensus.propose(records)
            // Decide again once our own decisions are in the views (some may have been refused).
            seen = try await node.applied.wait(until: range.upperBound)
            idle = false
        }
    }
}
