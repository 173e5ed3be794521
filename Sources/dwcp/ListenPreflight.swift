import NIOCore
import NIOPosix
import Node

/// Takes each address the node is to listen on and lets it go again, before the node opens its
/// data directory. The node itself binds its API only once it runs, after a member's first start
/// has written the region's membership and the directory's identity: a first start refused then
/// for a port in use had tied the directory to that start's `--peer` list, and the start that
/// followed, with the port free, was cut off as a member founded otherwise. Checked here, such a
/// start leaves the directory as it was. (A port taken in the moment between this check and the
/// real bind is still refused there, as before.)
enum ListenPreflight {
    /// `addresses`: host, port and the flag that set them; port 0 (any free port) is not checked.
    static func check(_ addresses: [(host: String, port: Int, flag: String)]) async throws {
        for address in addresses where address.port != 0 && !address.host.isEmpty {
            let host = address.host.hasPrefix("[") ? String(address.host.dropFirst().dropLast()) : address.host
            do {
                // With SO_REUSEADDR, as the listeners themselves: a port a stopped node left in
                // TIME_WAIT is free for them, and so for this check.
                let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: host, port: address.port).get()
                try await channel.close()
            } catch {
                // Only what the listener would be refused for (in use, not this machine's, a
                // privileged port); anything else is left for the listener itself to report.
                let shown = host.contains(":") ? "[\(host)]:\(address.port)" : "\(host):\(address.port)"
                guard let refused = NodeError.listening(on: shown, flag: address.flag, error) else { continue }
                throw CLIError(
                    .refused, "\(refused.message); refusing to start (nothing was written to the data directory)",
                    cause: error)
            }
        }
    }
}
