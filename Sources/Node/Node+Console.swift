import Foundation
import GRDB
import Hypervisor

extension Node {
    /// The console file of a VM this node hosts; a VM hosted elsewhere, unplaced or unknown is an error
    /// that says where to look.
    public func consolePath(of vm: String) async throws -> String {
        // Who added the host, if the history still says: nil when its row was compacted away,
        // .some(nil) when it was added without a request id.
        typealias Found = (host: String?, state: String, addedBy: String??)
        let found = try await views.pool.read { db -> Found? in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT host, actual_state FROM vms WHERE name = ?", arguments: [vm])
            else { return nil }
            let host: String? = row["host"]
            let addedBy = try host.flatMap { host -> String?? in
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT request_id FROM intents WHERE kind = 'host.add' AND subject = ? AND outcome = 'applied'
                        ORDER BY log_index DESC LIMIT 1
                        """, arguments: [host]
                ).map { $0["request_id"] as String? }
            }
            // (Read as optionals: a damaged or hand-edited file must not trap.)
            return (host, (row["actual_state"] as String?) ?? "state unknown", addedBy)
        }
        guard let found else { throw NodeError(.notFound, "no VM named \(vm)") }
        guard let host = found.host else {
            throw NodeError(.conflict, "VM \(vm) is not placed on a host yet: it has no console")
        }
        guard let agent = configuration.hostAgent, agent.hostName == host else {
            let elsewhere = "not by node \(configuration.nodeID)"
            switch found.addedBy {
            case nil:
                throw NodeError(
                    .conflict,
                    "VM \(vm) (\(found.state)) is on host \(host): its console is kept by the node whose host agent runs \(host), if one does (the history that said who added the host is compacted), \(elsewhere)"
                )
            case let requestID?? where HostAgent.isSelfRegistration(requestID):
                throw NodeError(
                    .conflict,
                    "VM \(vm) (\(found.state)) is on host \(host), whose console is kept by the node that runs that host's agent (it registered as \(requestID)), \(elsewhere)"
                )
            default:
                throw NodeError(
                    .conflict,
                    "VM \(vm) (\(found.state)) is placed on host \(host), which no node's host agent registered (it was added with dwcp host add): no node runs its VMs or keeps their console"
                )
            }
        }
        return configuration.vmsPath + "/" + vm + "/console.log"
    }

    /// The console output kept for `vm` (the rotated file, then the current one): up to twice the
    /// rotation size, read on NIO's thread pool rather than the event loop.
    public func console(of vm: String) async throws -> Data {
        let path = try await consolePath(of: vm)
        return try await Self.compute(inline: false) { SerialConsole.read(path: path) }
    }

    /// Emits the console kept so far, then new output as the guest writes it, until the VM is no
    /// longer running (and its last output was emitted), the task is cancelled, or the node stops.
    public func followConsole(of vm: String, emit: (Data) async throws -> Void) async throws {
        let path = try await consolePath(of: vm)
        // The rotated file, and the current one's first read, can hold a whole rotation (1 MiB):
        // they are read on NIO's thread pool. Later reads are what the guest wrote since the last
        // poll, read inline.
        let rotated = try await Self.compute(inline: false) { FileManager.default.contents(atPath: path + ".1") }
        if let rotated, !rotated.isEmpty { try await emit(rotated) }
        let follower = ConsoleFollower(path: path)
        var first = true
        while true {
            let running = try await views.pool.read { db in
                try String.fetchOne(db, sql: "SELECT actual_state FROM vms WHERE name = ?", arguments: [vm])
            }
            let data = try await Self.compute(inline: !first) { follower.newOutput() }
            first = false
            if !data.isEmpty { try await emit(data) }
            guard let running, ["scheduled", "starting", "running"].contains(running) else { return }
            // Wakes on the next applied record or after 100 ms; throws once the node shuts down.
            _ = try await applied.wait(until: applied.value + 1, timeout: .milliseconds(100))
        }
    }
}
