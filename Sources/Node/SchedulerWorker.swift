import GRDB
import Scheduler
import Store

/// Reacts to applied records by placing VMs: every VM waiting for a host gets a placement record
/// (or, once, an unschedulable record with the reason); unschedulable VMs are tried again whenever
/// the fleet's capacity changes. The decisions come from the pure ``Placer``; this shell reads the
/// views and proposes records.
struct SchedulerWorker: Sendable {
    let placer = Placer()

    func run(node: Node) async throws {
        var seen: UInt64 = 0
        var capacitySeen = ""
        var idle = false
        while true {
            if idle { seen = try await node.applied.wait(until: seen + 1) }
            idle = true
            let (requests, hosts, capacity) = try await node.views.pool.read { db in
                let capacity = try String.fetchOne(
                    db, sql: "SELECT count(*) || '/' || coalesce(max(updated_index), 0) FROM hosts") ?? ""
                let retryUnschedulable = capacity != capacitySeen
                let requests = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT name, region, cpus, memory_bytes, actual_state, reason FROM vms
                        WHERE host IS NULL AND (actual_state = 'pending' OR (? AND actual_state = 'unschedulable'))
                        ORDER BY created_index
                        """, arguments: [retryUnschedulable])
                let hosts = try Row.fetchAll(
                    db,
                    sql: "SELECT name, region, state, cpus, memory_bytes, cpus_used, memory_used_bytes FROM hosts ORDER BY name")
                return (requests, hosts, capacity)
            }
            capacitySeen = capacity
            guard !requests.isEmpty else { continue }
            let decisions = placer.place(
                requests.map {
                    PlacementRequest(vm: $0["name"], region: $0["region"], cpus: $0["cpus"], memoryBytes: $0["memory_bytes"])
                },
                on: hosts.map {
                    HostCapacity(
                        name: $0["name"], region: $0["region"], state: $0["state"], cpus: $0["cpus"],
                        memoryBytes: $0["memory_bytes"], cpusUsed: $0["cpus_used"], memoryUsedBytes: $0["memory_used_bytes"])
                })
            let at = Node.now()
            var records: [[UInt8]] = []
            for (request, decision) in zip(requests, decisions) {
                let vm: String = request["name"]
                if let host = decision.host {
                    records.append(Record(at: at, .vmPlaced(VMPlaced(vm: vm, host: host, explanation: decision.explanation.json))).encoded())
                } else if request["actual_state"] != "unschedulable" || request["reason"] != decision.reason {
                    records.append(Record(at: at, .vmUnschedulable(VMUnschedulable(vm: vm, reason: decision.reason))).encoded())
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
