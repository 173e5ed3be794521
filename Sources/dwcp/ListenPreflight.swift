import NIOCore
import Node

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Binds a socket to each address the node is to listen on and closes it again, before the node
/// opens its data directory. The node itself binds its API only once it runs, after a member's
/// first start has written the region's membership and the directory's identity: a first start
/// refused then for a port in use had tied the directory to that start's `--peer` list, and the
/// start that followed, with the port free, was cut off as a member founded otherwise. Checked
/// here, such a start leaves the directory as it was. (A port taken in the moment between this
/// check and the real bind is still refused there, as before.)
///
/// The socket never listens: bound and closed, it accepts no connection. (A first version listened
/// with NIO for the moment of the check, and took the connections the other members were making
/// to a restarting member into a channel that read nothing: they waited for answers that never
/// came until their stalled-connection checks gave up.)
enum ListenPreflight {
    /// `addresses`: host, port and the flag that set them; port 0 (any free port) is not checked.
    static func check(_ addresses: [(host: String, port: Int, flag: String)]) throws {
        for address in addresses where address.port != 0 && !address.host.isEmpty {
            let host = address.host.hasPrefix("[") ? String(address.host.dropFirst().dropLast()) : address.host
            do {
                try bindAndClose(try SocketAddress.makeAddressResolvingHost(host, port: address.port))
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

    /// Binds a TCP socket to `address` with SO_REUSEADDR, as the listeners do (a port a stopped
    /// node left in TIME_WAIT is free for them, and so for this check; one another socket listens
    /// on is not), and closes it.
    private static func bindAndClose(_ address: SocketAddress) throws {
        let family = address.protocol.rawValue
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(descriptor) }
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockAddr { pointer, size in bind(descriptor, pointer, socklen_t(size)) }
        guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
    }
}
