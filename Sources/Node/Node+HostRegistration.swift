import GRDB
import Store

extension Node {
    /// Adds `host` unless a host of its name exists: a machine registering itself at start
    /// (the host agent; `NodeConfiguration.registerHost` in tests). It goes on trying while the region cannot take the
    /// intent (no leader yet, as when members start one by one), until the node stops; a request
    /// id another intent took (it is derived from the node's and the host's names), or that
    /// registered this host before it was removed, is replaced by a fresh one. Returns the index the host was added at; nil when it existed already.
    func registerSelf(_ host: HostAdded, requestID: String) async throws -> UInt64? {
        agentHost.withLock { $0 = host.name }
        var requestID = requestID
        var pause: Duration = .milliseconds(200)
        while true {
            if try await hostExists(host.name) { return nil }
            do {
                let receipt = try await submit(.addHost(host), requestID: requestID)
                // The id's registration applied long ago and the host was removed since (it did
                // not exist at the top of the loop): a retry would only return that old index.
                if receipt.outcome == "duplicate" {
                    logger.notice(
                        "host \(host.name) was registered at log index \(receipt.logIndex) and removed since: registering it again"
                    )
                    requestID += "-\(UInt32.random(in: 0...UInt32.max))"
                    continue
                }
                return receipt.logIndex
            } catch let error as NodeError where error.code == .unavailable || error.code == .conflict {
                if try await hostExists(host.name) { return nil }
                if error.code == .conflict && error.message.contains("request id \(requestID) was used") {
                    logger.warning("registering host \(host.name): \(error.message); registering under a new one")
                    requestID += "-\(UInt32.random(in: 0...UInt32.max))"
                    continue
                }
                logger.warning("cannot register host \(host.name) yet (\(error.message)); trying again in \(pause)")
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }

    /// The hosts this node's host agent registered under other names than `current` (its
    /// `--host-name` changed) that still exist, with how many VMs are placed on each: no agent
    /// runs those VMs now.
    func formerAgentHosts(besides current: String) async throws -> [(name: String, vms: Int)] {
        // The ids that start with the prefix, as a range on `intents_by_request_id` (the prefix
        // ends in '-', and '.' follows it): no scan of every intent.
        let prefix = HostAgent.requestIDPrefix(nodeID: configuration.nodeID)
        let after = prefix.dropLast() + "."
        return try await views.pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT h.name, (SELECT count(*) FROM vms WHERE host = h.name)
                    FROM intents i JOIN hosts h ON h.name = i.subject
                    WHERE i.request_id >= ? AND i.request_id < ? AND i.outcome = 'applied'
                        AND i.kind = 'host.add' AND h.name != ?
                    ORDER BY h.name
                    """, arguments: [prefix, String(after), current]
            ).map { (name: $0[0], vms: $0[1]) }
        }
    }

    private func hostExists(_ name: String) async throws -> Bool {
        try await views.pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM hosts WHERE name = ?", arguments: [name]) ?? false
        }
    }
}
