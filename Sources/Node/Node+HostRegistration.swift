import GRDB
import Store

extension Node {
    /// Adds `host` unless a host of its name exists: a machine registering itself at start
    /// (`--register-host`, the host agent). It goes on trying while the region cannot take the
    /// intent (no leader yet, as when members start one by one), until the node stops. The request
    /// id is `prefix` and a random part, the same for every try: a try whose answer was lost
    /// applies once, and no other intent can have taken the id (one derived from names alone
    /// could be, and then stopped the node at every start). A registration that lands after
    /// another (an earlier run's) is refused as a host that exists, which is what it wanted.
    /// Returns the index the host was added at; nil when it existed already.
    func registerSelf(_ host: HostAdded, requestIDPrefix prefix: String) async throws -> UInt64? {
        let requestID = "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
        var pause: Duration = .milliseconds(200)
        while true {
            if try await hostExists(host.name) { return nil }
            do {
                return try await submit(.addHost(host), requestID: requestID).logIndex
            } catch let error as NodeError where error.code == .unavailable || error.code == .conflict {
                if try await hostExists(host.name) { return nil }
                logger.warning("cannot register host \(host.name) yet (\(error.message)); trying again in \(pause)")
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }

    private func hostExists(_ name: String) async throws -> Bool {
        try await views.pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM hosts WHERE name = ?", arguments: [name]) ?? false
        }
    }
}
