import AsyncHTTPClient
import ChildProcess
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

// bench/region: small writes to a three-node DWCP region against a three-node etcd cluster, both
// on loopback on this machine, in the same run, driven by the same load (ClosedLoopLoad: one
// keep-alive HTTP/1.1 connection per client on NIO's event loops; AsyncHTTPClient only sets up).
//
//   dwcp-bench-region [--seconds S] [--rounds R] [--clients 1,64] [--peer-tls] [--client-tls]
//
// For each client count and round: every client writes in a closed loop for S seconds (after a
// one-second warm-up) and each acknowledged write's latency is recorded.
//   dwcp   PUT /v1/hosts/hC/labels {"labels":{"k":"vI"}} on the leader: an intent proposed,
//          committed by a majority (each member fsyncs its LMDB log), applied to the leader's views,
//          answered with the host's row.
//   etcd   POST /v3/kv/put {"key":"kC","value":"vI"} (base64) on the leader, through etcd's own
//          HTTP/JSON gateway: committed by a majority (each member fsyncs its WAL).
// Reported: writes/s and p50/p99 latency per system, the median over rounds, and DWCP's ratios;
// and the CPU time (user + system, from /proc) each write cost the leader, the two followers
// together and this client, over the same window: on a 2-core machine shared by six servers and
// the client, CPU per write decides throughput, and it is far less noisy than writes/s.
// etcd is Debian's etcd-server (3.4); `make bench-region` installs it. Both run with their
// defaults for durability (fsync on every commit).

struct Options {
    var seconds = 10.0
    var rounds = 3
    var clients = [1, 64]
    /// Mutual TLS between the members of both systems (`--peer-tls`): certificates of one
    /// authority from scripts/peer-certs.sh; the clients still speak plain HTTP to the leader.
    var peerTLS = false
    /// HTTPS with client certificates between the clients and the leader, for both systems
    /// (`--client-tls`): DWCP with --api-trusted-ca-file, etcd with --client-cert-auth.
    var clientTLS = false

    init(_ arguments: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("missing value for \(arguments[i - 1])") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--seconds": seconds = Double(value()) ?? { fail("invalid --seconds") }()
            case "--rounds": rounds = Int(value()) ?? { fail("invalid --rounds") }()
            case "--clients":
                clients = value().split(separator: ",").map { Int($0) ?? { fail("invalid --clients") }() }
            case "--peer-tls": peerTLS = true
            case "--client-tls": clientTLS = true
            case "-h", "--help":
                print(
                    "usage: dwcp-bench-region [--seconds S] [--rounds R] [--clients 1,64] [--peer-tls] [--client-tls]")
                exit(0)
            default: fail("unknown argument \(arguments[i])")
            }
            i += 1
        }
        guard seconds > 0, rounds >= 1, !clients.isEmpty, clients.allSatisfy({ $0 >= 1 }) else {
            fail("--seconds, --rounds and --clients must be positive")
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("dwcp-bench-region: \(message)\n".utf8))
    exit(1)
}

/// A server process the bench started; killed at exit.
final class Server: Sendable {
    let process: SpawnedProcess
    let name: String

    init(_ executable: String, _ arguments: [String], log: String, name: String) throws {
        self.name = name
        FileManager.default.createFile(atPath: log, contents: nil)
        process = try SpawnedProcess(executable, arguments, stdout: .file(log), stderr: .file(log))
    }

    func stop() async {
        process.kill(SIGKILL)
        await process.waitUntilExit()
    }
}

/// The servers started so far (all killed at the end, or on failure).
final class ServerList: Sendable {
    let servers = Mutex<[Server]>([])
    func add(_ server: Server) { servers.withLock { $0.append(server) } }
    func stopAll() async { for server in servers.withLock({ $0 }) { await server.stop() } }
    /// The process ids of the servers with these names, in that order.
    func pids(named names: [String]) -> [Int32] {
        let all = servers.withLock { $0 }
        return names.map { name in all.first { $0.name == name }!.process.processIdentifier }
    }
}

/// One system under test: its leader's client port, what one write is, and its processes.
protocol System: Sendable {
    var name: String { get }
    /// The leader's client (API) port on 127.0.0.1.
    var leaderPort: Int { get }
    var leaderPID: Int32 { get }
    var followerPIDs: [Int32] { get }
    /// Client `client`'s write number `sequence`.
    func write(client: Int, sequence: Int) -> WriteRequest
}

/// CPU time (user + system) process `pid` has used so far, in seconds; 0 once it is gone.
func cpuSeconds(_ pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let nameEnd = stat.lastIndex(of: ")")
    else { return 0 }
    // After the command name in parentheses come field 3 (state) on; utime and stime are 14 and 15.
    let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds used so far by a system's leader, its followers together, and this client.
func cpuSample(_ system: any System) -> (leader: Double, followers: Double, client: Double) {
    (cpuSeconds(system.leaderPID), system.followerPIDs.map(cpuSeconds).reduce(0, +), cpuSeconds(getpid()))
}

struct DWCPRegion: System {
    let name = "dwcp"
    let leaderPort: Int
    let leaderPID: Int32
    let followerPIDs: [Int32]

    func write(client: Int, sequence: Int) -> WriteRequest {
        WriteRequest(method: .PUT, path: "/v1/hosts/h\(client)/labels", body: #"{"labels":{"k":"v\#(sequence)"}}"#)
    }
}

struct EtcdCluster: System {
    let name = "etcd"
    let leaderPort: Int
    let leaderPID: Int32
    let followerPIDs: [Int32]

    func write(client: Int, sequence: Int) -> WriteRequest {
        let key = Data("k\(client)".utf8).base64EncodedString()
        let value = Data("v\(sequence)".utf8).base64EncodedString()
        return WriteRequest(method: .POST, path: "/v3/kv/put", body: #"{"key":"\#(key)","value":"\#(value)"}"#)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct Measurement {
    var writesPerSecond: Double
    var p50: Double
    var p99: Double
    /// CPU milliseconds per write: the leader, the followers together, the client.
    var leaderCPU: Double
    var followersCPU: Double
    var clientCPU: Double
}

/// `clients` closed-loop writers for `seconds` (after a one-second warm-up).
func measure(_ system: any System, clients: Int, seconds: Double, tls: NIOSSLContext?) async throws -> Measurement {
    let warmUpEnds = NIODeadline.now() + .seconds(1)
    let ends = warmUpEnds + .milliseconds(Int64(seconds * 1000))
    let (load, cpuStart) = try await withThrowingTaskGroup(of: Void.self) { group in
        let cpuAtStart = Mutex((leader: 0.0, followers: 0.0, client: 0.0))
        group.addTask {
            // Taken on an event loop's timer at the warm-up's end, where the measured window starts.
            let sample = try await MultiThreadedEventLoopGroup.singleton.any().scheduleTask(deadline: warmUpEnds) {
                cpuSample(system)
            }.futureResult.get()
            cpuAtStart.withLock { $0 = sample }
        }
        let load = try await ClosedLoopLoad.run(
            host: "127.0.0.1", port: system.leaderPort, tls: tls, clients: clients, warmUpEnds: warmUpEnds, ends: ends
        ) { client, sequence in system.write(client: client, sequence: sequence) }
        try await group.waitForAll()
        return (load, cpuAtStart.withLock { $0 })
    }
    let cpuAtEnd = cpuSample(system)
    let sorted = load.latencies.sorted()
    guard !sorted.isEmpty else {
        throw BenchError(
            "\(system.name): no write succeeded (\(load.failures) failed; the first: \(load.firstFailure ?? "?"))")
    }
    if load.failures > 0 {
        print(
            "  (\(system.name): \(load.failures) writes failed and were not counted; the first: \(load.firstFailure!))")
    }
    func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    // The window's writes are those whose latency was recorded (started after the warm-up, ended in time).
    let perWrite = 1000 / Double(sorted.count)
    return Measurement(
        writesPerSecond: Double(sorted.count) / seconds, p50: percentile(0.5), p99: percentile(0.99),
        leaderCPU: (cpuAtEnd.leader - cpuStart.leader) * perWrite,
        followersCPU: (cpuAtEnd.followers - cpuStart.followers) * perWrite,
        clientCPU: (cpuAtEnd.client - cpuStart.client) * perWrite)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func get(_ url: String, http: HTTPClient) async -> String? {
    do {
        let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
        return String(buffer: try await response.body.collect(upTo: 1 << 20))
    } catch {
        return nil
    }
}

func post(_ url: String, _ body: String, http: HTTPClient) async -> (Int, String)? {
    var request = HTTPClientRequest(url: url)
    request.method = .POST
    request.body = .bytes(ByteBuffer(string: body))
    guard let response = try? await http.execute(request, timeout: .seconds(5)),
        let data = try? await response.body.collect(upTo: 1 << 20)
    else { return nil }
    return (Int(response.status.code), String(buffer: data))
}

/// `count` distinct ports free on 127.0.0.1: each is held bound until all are picked, so the
/// kernel cannot hand one out twice (picked one at a time, two members once got the same port).
func freePorts(_ count: Int) -> [Int] {
    var sockets: [Int32] = []
    defer { for fd in sockets { close(fd) } }
    return (0..<count).map { _ in
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        sockets.append(fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Makes certificates for `members` (all at 127.0.0.1) in `directory` with scripts/peer-certs.sh.
func makeCertificates(_ members: [String], in directory: String) async throws {
    let script = URL(fileURLWithPath: executableDirectory + "/../../scripts/peer-certs.sh").standardized.path
    let made = try await runToEnd("/bin/bash", [script, directory] + members.map { "\($0)=127.0.0.1" })
    guard made.status == 0 else { throw BenchError("\(script) failed (is openssl installed?): \(made.errors)") }
}

/// `certificates`: members' certificates for mutual TLS between them (`peerTLS`) and on the API
/// (`clientTLS`).
func startDWCP(
    binary: String, directory: String, hosts: Int, http: HTTPClient, servers: ServerList, certificates: String?,
    peerTLS: Bool, clientTLS: Bool
) async throws -> DWCPRegion {
    let scheme = clientTLS ? "https" : "http"
    let ids = ["n1", "n2", "n3"]
    let ports = freePorts(ids.count * 2)
    let replication = Array(ports[..<ids.count])
    let api = Array(ports[ids.count...])
    let peers = zip(ids, replication).flatMap { ["--peer", "\($0)@127.0.0.1:\($1)"] }
    for (position, id) in ids.enumerated() {
        var tls: [String] = []
        if let certificates, peerTLS {
            tls += [
                "--peer-cert-file", "\(certificates)/\(id).pem", "--peer-key-file", "\(certificates)/\(id).key",
                "--peer-trusted-ca-file", "\(certificates)/ca.pem",
            ]
        }
        if let certificates, clientTLS {
            tls += [
                "--api-cert-file", "\(certificates)/\(id).pem", "--api-key-file", "\(certificates)/\(id).key",
                "--api-trusted-ca-file", "\(certificates)/ca.pem",
            ]
        }
        servers.add(
            try Server(
                binary,
                [
                    "serve", "--data-dir", "\(directory)/dwcp-\(id)", "--node-id", id, "--region", "eu", "--api",
                    "127.0.0.1:\(api[position])", "--listen", "127.0.0.1:\(replication[position])", "--no-host-agent",
                    "--log-level", "warning",
                ] + peers + tls, log: "\(directory)/dwcp-\(id).log", name: id))
    }
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
        for (position, port) in api.enumerated() {
            // The node's own role, at the top of its status (its `members` list names the leader
            // on every node, so a search of the whole text would pick any node).
            if let status = await get("\(scheme)://127.0.0.1:\(port)/v1/cluster?timeout_ms=0", http: http),
                let object = try? JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any],
                object["role"] as? String == "leader"
            {
                let leader = "127.0.0.1:\(port)"
                for client in 0..<hosts {
                    let body = #"{"name":"h\#(client)","region":"eu","cpus":64,"memory_bytes":274877906944}"#
                    guard let (code, text) = await post("\(scheme)://\(leader)/v1/hosts", body, http: http), code == 200
                    else { throw BenchError("dwcp: cannot add host h\(client)") }
                    _ = text
                }
                let pids = servers.pids(named: ids)
                return DWCPRegion(
                    leaderPort: port, leaderPID: pids[position],
                    followerPIDs: pids.enumerated().filter { $0.offset != position }.map(\.element))
            }
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw BenchError("the DWCP region elected no leader in 30 s (logs in \(directory))")
}

func startEtcd(
    binary: String, directory: String, http: HTTPClient, servers: ServerList, certificates: String?,
    peerTLS: Bool, clientTLS: Bool
) async throws -> EtcdCluster {
    let names = ["e1", "e2", "e3"]
    let ports = freePorts(names.count * 2)
    let peer = Array(ports[..<names.count])
    let client = Array(ports[names.count...])
    let peerScheme = peerTLS ? "https" : "http"
    let scheme = clientTLS ? "https" : "http"
    let cluster = zip(names, peer).map { "\($0)=\(peerScheme)://127.0.0.1:\($1)" }.joined(separator: ",")
    for (position, name) in names.enumerated() {
        var tls: [String] = []
        if let certificates, peerTLS {
            tls += [
                "--peer-cert-file", "\(certificates)/\(name).pem", "--peer-key-file", "\(certificates)/\(name).key",
                "--peer-trusted-ca-file", "\(certificates)/ca.pem", "--peer-client-cert-auth",
            ]
        }
        if let certificates, clientTLS {
            tls += [
                "--cert-file", "\(certificates)/\(name).pem", "--key-file", "\(certificates)/\(name).key",
                "--trusted-ca-file", "\(certificates)/ca.pem", "--client-cert-auth",
            ]
        }
        servers.add(
            try Server(
                binary,
                [
                    "--name", name, "--data-dir", "\(directory)/etcd-\(name)",
                    "--listen-client-urls", "\(scheme)://127.0.0.1:\(client[position])",
                    "--advertise-client-urls", "\(scheme)://127.0.0.1:\(client[position])",
                    "--listen-peer-urls", "\(peerScheme)://127.0.0.1:\(peer[position])",
                    "--initial-advertise-peer-urls", "\(peerScheme)://127.0.0.1:\(peer[position])",
                    "--initial-cluster", cluster, "--initial-cluster-state", "new",
                    "--initial-cluster-token", "dwcp-bench", "--log-level", "warn",
                ] + tls, log: "\(directory)/etcd-\(name).log", name: name))
    }
    let deadline = ContinuousClock.now + .seconds(30)
    while ContinuousClock.now < deadline {
        for (position, port) in client.enumerated() {
            // The member whose id is the leader's id leads.
            if let (code, status) = await post(
                "\(scheme)://127.0.0.1:\(port)/v3/maintenance/status", "{}", http: http),
                code == 200,
                let member = status.firstMatch(of: #/"member_id":"(\d+)"/#)?.output.1,
                let leader = status.firstMatch(of: #/"leader":"(\d+)"/#)?.output.1, member == leader
            {
                let pids = servers.pids(named: names)
                return EtcdCluster(
                    leaderPort: port, leaderPID: pids[position],
                    followerPIDs: pids.enumerated().filter { $0.offset != position }.map(\.element))
            }
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw BenchError("the etcd cluster elected no leader in 30 s (logs in \(directory))")
}

let options = Options(CommandLine.arguments)
let executableDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
let dwcpBinary = ProcessInfo.processInfo.environment["DWCP_BINARY"] ?? executableDirectory + "/dwcp"
guard FileManager.default.isExecutableFile(atPath: dwcpBinary) else {
    fail(
        "no dwcp binary at \(dwcpBinary): swift build -c release --static-swift-stdlib --product dwcp (make bench-region does)"
    )
}
guard let etcdBinary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: FileManager.default.isExecutableFile)
else {
    fail("etcd is not installed: apt-get install etcd-server (make bench-region does)")
}
let directory = NSTemporaryDirectory() + "dwcp-bench-region-\(UUID().uuidString.prefix(8))"
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

var certificates: String?
if options.peerTLS || options.clientTLS {
    certificates = directory + "/certs"
    do {
        try await makeCertificates(["n1", "n2", "n3", "e1", "e2", "e3", "bench"], in: directory + "/certs")
    } catch {
        fail("\(error)")
    }
}
var configuration = HTTPClient.Configuration()
configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
if options.clientTLS, let certificates {
    // Both systems' APIs ask for a client certificate of the authority; one handshake per connection.
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .file(certificates + "/ca.pem")
    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificates + "/bench.pem").map { .certificate($0) }
    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: certificates + "/bench.key", format: .pem))
    configuration.tlsConfiguration = tls
}
// The load's connections present the same certificate.
let loadTLS = try configuration.tlsConfiguration.map { try NIOSSLContext(configuration: $0) }
let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
let servers = ServerList()
do {
    let dwcp = try await startDWCP(
        binary: dwcpBinary, directory: directory, hosts: options.clients.max()!, http: http, servers: servers,
        certificates: certificates, peerTLS: options.peerTLS, clientTLS: options.clientTLS)
    let etcd = try await startEtcd(
        binary: etcdBinary, directory: directory, http: http, servers: servers, certificates: certificates,
        peerTLS: options.peerTLS, clientTLS: options.clientTLS)
    let security =
        (options.peerTLS ? ", mutual TLS between members" : "")
        + (options.clientTLS ? ", HTTPS with client certificates to the leader" : "")
    print(
        "bench/region: 3-node DWCP region vs 3-node etcd (\(etcdBinary)), loopback\(security), \(options.rounds) rounds of \(options.seconds) s"
    )
    print("")
    print("clients  system   writes/s     p50 µs     p99 µs   CPU ms/write: leader followers client")
    var summary: [String] = []
    for clients in options.clients {
        var results: [String: [Measurement]] = [:]
        for _ in 0..<options.rounds {
            // Alternate which system goes first, so neither always runs on a warmer machine.
            let order: [any System] = results.isEmpty || results["dwcp"]!.count % 2 == 0 ? [dwcp, etcd] : [etcd, dwcp]
            for system in order {
                let measured = try await measure(system, clients: clients, seconds: options.seconds, tls: loadTLS)
                results[system.name, default: []].append(measured)
            }
        }
        var medians: [String: Measurement] = [:]
        for name in ["dwcp", "etcd"] {
            let runs = results[name]!
            let m = Measurement(
                writesPerSecond: median(runs.map(\.writesPerSecond)), p50: median(runs.map(\.p50)),
                p99: median(runs.map(\.p99)), leaderCPU: median(runs.map(\.leaderCPU)),
                followersCPU: median(runs.map(\.followersCPU)), clientCPU: median(runs.map(\.clientCPU)))
            medians[name] = m
            print(
                String(
                    format: "%7d  %-6@ %9.0f  %9.0f  %9.0f   %19.3f %9.3f %6.3f", clients, name as NSString,
                    m.writesPerSecond, m.p50, m.p99, m.leaderCPU, m.followersCPU, m.clientCPU))
        }
        let d = medians["dwcp"]!
        let e = medians["etcd"]!
        summary.append(
            String(
                format:
                    "%d clients: throughput %.2f× etcd, p50 %.2f× etcd's, p99 %.2f× etcd's, server CPU per write %.2f× etcd's",
                clients, d.writesPerSecond / e.writesPerSecond, d.p50 / e.p50, d.p99 / e.p99,
                (d.leaderCPU + d.followersCPU) / (e.leaderCPU + e.followersCPU)))
    }
    print("")
    for line in summary { print(line) }
    print("(latency ratios below 1 mean DWCP is faster; medians over rounds)")
} catch {
    await servers.stopAll()
    try? await http.shutdown().get()
    fail("\(error) (logs kept in \(directory))")
}
await servers.stopAll()
try? await http.shutdown().get()
try? FileManager.default.removeItem(atPath: directory)
