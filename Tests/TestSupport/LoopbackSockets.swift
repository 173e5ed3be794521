import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Loopback ports and raw connections for tests that talk to a listener below its protocol.

/// The ports ``closedPort()`` gave out in this process.
private let handedOut = Mutex<Set<Int>>([])

/// A failure to find a port or to connect.
public struct LoopbackFailure: Error, CustomStringConvertible {
    public let description: String
}

/// A loopback port nothing listens on: bound, then closed. Drawn from below Linux's ephemeral range
/// (32768 and up by default), which outgoing connections take their ports from: a port from that
/// range, free when drawn, could be some client's by the time a node binds it (seen once in a
/// full run, a member stopping with "Address already in use").
///
/// No port is given twice in one test process: the tests run at once, and two that drew the same
/// free port before either bound it collided (seen in a full run: "Address already in use").
public func closedPort() throws -> Int {
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
        if canBind(port) { return port }
    }
    throw LoopbackFailure(description: "cannot find a free loopback port in 20000-31999")
}

/// Whether a loopback TCP socket can be bound to `port` now.
public func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopback(port)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// A loopback listener that never accepts: the kernel completes connections to it in its backlog,
/// and nothing answers them, as with a stopped or frozen process. Its descriptor (close it when
/// done) and port.
public func silentListener() throws -> (socket: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopback(0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let listening = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard fd >= 0, listening else {
        if fd >= 0 { close(fd) }
        throw LoopbackFailure(description: "cannot listen on a loopback port")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// Writes raw bytes to a loopback TCP port and closes the connection.
public func sendRaw(_ bytes: [UInt8], port: Int) throws {
    let fd = try connectLoopback(port)
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    usleep(50_000)
}

/// Writes raw bytes to a loopback TCP port and reads what comes back until the other side closes
/// (`closed`), or `timeout` passes without a byte (not `closed`).
public func exchangeRaw(_ bytes: [UInt8], port: Int, timeout: Int = 5) throws -> (answer: [UInt8], closed: Bool) {
    let fd = try connectLoopback(port)
    defer { close(fd) }
    var limit = timeval(tv_sec: timeout, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let (answer, closed) = readToEnd(fd)
    return (answer, closed)
}

/// Reads a descriptor until its end (`closed`) or an error, such as a receive timeout (not `closed`).
public func readToEnd(_ fd: Int32) -> (bytes: [UInt8], closed: Bool) {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    var count = 0
    repeat {
        count = read(fd, &chunk, chunk.count)
        if count > 0 { bytes += chunk[..<count] }
    } while count > 0
    return (bytes, count == 0)
}

/// A TCP connection to a loopback port, as a bare descriptor (the caller closes it).
public func connectLoopback(_ port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopback(port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    guard connected else {
        close(fd)
        throw LoopbackFailure(description: "cannot connect to 127.0.0.1:\(port)")
    }
    return fd
}

/// Closes a connection with a reset (SO_LINGER 0) rather than an orderly close.
public func closeWithReset(_ fd: Int32) {
    var noLinger = linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &noLinger, socklen_t(MemoryLayout<linger>.size))
    close(fd)
}

/// The local port of a connected descriptor.
public func localPort(of fd: Int32) -> Int {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Whether the kernel still lists a loopback TCP socket from `localPort` to `remotePort`, in any
/// state (`/proc/net/tcp`): one whose owner closed it and that the peer has reset is gone.
public func loopbackSocketListed(localPort: Int, remotePort: Int) -> Bool {
    // Read to its end (procfs gives no size, and the table runs long while other tests run).
    let fd = open("/proc/net/tcp", O_RDONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let table = String(decoding: readToEnd(fd).bytes, as: UTF8.self)
    let local = String(format: "0100007F:%04X", localPort)
    let remote = String(format: "0100007F:%04X", remotePort)
    return table.split(separator: "\n").contains { line in
        let fields = line.split(separator: " ")
        return fields.count > 2 && fields[1] == local && fields[2] == remote
    }
}

private func loopback(_ port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}
