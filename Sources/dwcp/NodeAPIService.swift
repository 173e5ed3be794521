import Node
import ServiceLifecycle

/// Runs the node's HTTP API once the node listens on its replication port, so that a port it
/// cannot take stops `dwcp serve` before the API has started (and before a script reads its
/// "listening on" line).
struct NodeAPIService<API: Service>: Service {
    let node: Node
    let api: API

    func run() async throws {
        do {
            try await node.waitUntilListening()
        } catch {
            // The node stopped first: its own error is the one to report. Returning now could
            // beat it to the service group ("a service finished unexpectedly"), so this waits
            // until the group ends it (cancelled for that error, or a graceful shutdown).
            try? await gracefulShutdown()
            return
        }
        try await api.run()
    }
}
