import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Node
import Replication
import ServiceLifecycle
import Store
import UnixSignals

/// `dwcp serve`: runs a node until SIGINT or SIGTERM.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a node.")

    @Option(name: .long, help: "The node's data directory.")
    var dataDir: String

    @Option(name: .long, help: "This node's id.")
    var nodeID: String

    @Option(name: .long, help: "The region this node belongs to.")
    var region: String

    @Option(name: .long, help: "Where the HTTP API listens, HOST:PORT.")
    var api = "127.0.0.1:7070"

    @OptionGroup var apiTLS: APITLSOptions

    @OptionGroup var node: NodeOptions

    @OptionGroup var agent: HostAgentOptions

    @OptionGroup var runtime: RuntimeOptions

    @Option(name: .long, help: "Where the replication port listens, HOST:PORT (with --peer or --join).")
    var listen: String?

    @Option(
        name: .long,
        help: "A member of a new region, ID@HOST:PORT (repeat for each; this node may be listed).")
    var peer: [String] = []

    @Flag(name: .long, help: "Join an existing region (added there with `dwcp cluster add-member`).")
    var join = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "This member's certificate (PEM) for mutual TLS on the replication port.",
            discussion:
                "With --peer-key-file and --peer-trusted-ca-file; every member of the region must use TLS, or none. scripts/peer-certs.sh makes a region's authority and its members' certificates."
        ))
    var peerCertFile: String?

    @Option(name: .long, help: "The key of --peer-cert-file (PEM).")
    var peerKeyFile: String?

    @Option(name: .long, help: "The authority a peer's certificate must be signed by (PEM).")
    var peerTrustedCAFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Milliseconds a follower may hold a few committed entries back to apply them together (0: at once; 10, 10ms or 0.01s).",
            discussion: "Nothing waiting on the node is held up: a read or an answer that needs them asks for them."))
    var followerApplyDelay = MillisecondsArgument(
        Int(ReplicationConfiguration.defaultFollowerApplyDelay / .milliseconds(1)))

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Milliseconds a member hears nothing from a leader before it calls an election (after 1-2 times this; 100 to 60000, in steps of 10; 1000, 1000ms or 1s).",
            discussion:
                "Also how long a leader that hears from no majority keeps leading; a member waits three times this (at least 2 s) for a leader before a forwarded intent or read fails. Shorter fails over sooner; longer rides out slow links and loaded machines without elections that were not needed (etcd's default is 1000). Give every member of a region the same."
        ))
    var electionTimeout = MillisecondsArgument(ReplicationConfiguration.defaultElectionTimeoutMilliseconds)

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How often the leader checks that every member's views hold the same rows, as dwcp cluster verify does: 30s, 90m, 12h, 1d; 0 never.",
            discussion:
                "Each check costs every member a read of its whole views (about a second per 100,000 VMs). dwcp cluster status shows the last one; a member whose views differ is logged as an error."
        ))
    var verifyEvery = DurationFlag.describe(ReplicationConfiguration.defaultVerifyEvery)

    func validate() throws {
        try validating {
            if !peer.isEmpty || join {
                guard let listen else { throw ValidationError("--peer and --join need --listen HOST:PORT") }
                let listening = try parseAddress(listen)
                if try parseAddress(api) == listening {
                    throw ValidationError(
                        "--api and --listen both name \(listen): the API and the replication port need a port each")
                }
                var ids: Set<String> = []
                // (This member's own address is the one it listens on, whether --peer lists it or not.)
                var holders = join ? [:] : [listen: nodeID]
                for member in peer {
                    let (id, address) = try parsePeer(member)
                    guard ids.insert(id).inserted else { throw ValidationError("--peer names \(id) twice") }
                    if let holder = holders[address], holder != id {
                        throw ValidationError(
                            "--peer gives \(id) the address of \(holder), \(address): each member needs a replication address of its own"
                        )
                    }
                    holders[address] = id
                }
            } else if listen != nil {
                throw ValidationError("--listen needs --peer ID@HOST:PORT (a new region) or --join")
            }
            let tlsFiles = [peerCertFile, peerKeyFile, peerTrustedCAFile]
            if tlsFiles.contains(where: { $0 != nil }) {
                guard !tlsFiles.contains(where: { $0 == nil }) else {
                    throw ValidationError(
                        "mutual TLS on the replication port takes all three of --peer-cert-file, --peer-key-file and --peer-trusted-ca-file"
                    )
                }
                guard listen != nil else {
                    throw ValidationError(
                        "--peer-cert-file and the rest are for the replication port: they need --listen")
                }
            }
            guard (100...60_000).contains(electionTimeout.value), electionTimeout.value % 10 == 0 else {
                throw ValidationError(
                    "--election-timeout must be 100 to 60000 milliseconds, in steps of 10 (a Raft tick); it was \(electionTimeout.value)"
                )
            }
            guard (0...60_000).contains(followerApplyDelay.value) else {
                throw ValidationError("--follower-apply-delay must be 0 to 60000 (milliseconds)")
            }
            _ = try parseVerifyEvery(verifyEvery)
            try Validation.name(nodeID, what: "node")
            try Validation.name(region, what: "region")
            try node.validate()
            try agent.validate()
            try runtime.validate()
            try apiTLS.validate()
        }
    }

    func run() async throws {
        let (host, port) = try parseAddress(api)
        var configuration = NodeConfiguration(
            dataDirectory: dataDir, nodeID: nodeID, region: region, apiHost: host, apiPort: port,
            hostAgent: try agent.configuration(defaultName: nodeID))
        configuration.apiTLS = try apiTLS.configuration()
        if let listen {
            let (listenHost, listenPort) = try parseAddress(listen)
            var members: [String: String] = [:]
            for member in peer {
                let (id, address) = try parsePeer(member)
                members[id] = address
            }
            if !join, members[nodeID] == nil { members[nodeID] = listen }
            var replication = ReplicationConfiguration(
                listenHost: listenHost, listenPort: listenPort, peers: members, join: join)
            replication.followerApplyDelay = .milliseconds(followerApplyDelay.value)
            replication.setElectionTimeout(.milliseconds(electionTimeout.value))
            replication.verifyEvery = try parseVerifyEvery(verifyEvery)
            if let peerCertFile, let peerKeyFile, let peerTrustedCAFile {
                do {
                    let tls = try PeerTLS(
                        certificateFile: peerCertFile, privateKeyFile: peerKeyFile, trustedCAFile: peerTrustedCAFile)
                    try tls.requireSpeaks(for: nodeID)
                    replication.tls = tls
                } catch let error as ReplicationError {
                    throw CLIError(.usage, error.description, cause: error)
                }
            }
            configuration.replication = replication
        }
        try node.apply(to: &configuration)
        try await runNode(configuration, logLevel: node.level, eventLoops: runtime.eventLoops)
    }
}

/// `--history-retention` (``HistoryRetention/parse(_:)``), its refusal naming the flag.
func parseRetention(_ text: String) throws -> Duration? {
    do {
        return try HistoryRetention.parse(text)
    } catch let error as NodeError {
        throw ValidationError("--history-retention: \(error.message)")
    }
}

/// `--verify-every` (``DurationFlag``), at least a second, its refusal naming the flag.
func parseVerifyEvery(_ text: String) throws -> Duration? {
    do {
        return try DurationFlag.parse(text, minimum: .seconds(1), off: "never verify")
    } catch let error as NodeError {
        throw ValidationError("--verify-every: \(error.message)")
    }
}

/// `ID@HOST:PORT` → (ID, `HOST:PORT`).
func parsePeer(_ text: String, what: String = "--peer") throws -> (String, String) {
    let parts = text.split(separator: "@", maxSplits: 1)
    guard parts.count == 2 else { throw ValidationError("invalid \(what) '\(text)': expected ID@HOST:PORT") }
    try Validation.name(String(parts[0]), what: "node")
    guard Validation.hostAndPort(String(parts[1])) != nil else {
        // (A member's replication address: not the API's 7070 as the CLI's own example has it.)
        throw ValidationError(
            "invalid \(what) '\(text)': expected ID@HOST:PORT of its replication port (--listen), like n2@10.0.0.2:7100"
        )
    }
    // What the region accepts as a member's address (a port of 1 or more, at most 255 bytes).
    try Validation.memberAddress(String(parts[1]))
    return (String(parts[0]), String(parts[1]))
}

/// `dwcp dev`: a one-node node with embedded defaults, this machine registered as a host.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a single node with defaults: data ./.dwcp, region local, API 127.0.0.1:7070.",
        discussion: """
            With a usable /dev/kvm this machine is registered as a host (under its name, or --host-name) \
            and runs the VMs placed on it; without one, or with --no-host-agent, it is not a host: it \
            could not run the VMs the scheduler would place on it.
            """)

    @Option(name: .long, help: "The node's data directory.")
    var dataDir = "./.dwcp"

    @Option(name: .long, help: "Where the HTTP API listens, HOST:PORT.")
    var api = "127.0.0.1:7070"

    @OptionGroup var apiTLS: APITLSOptions

    @OptionGroup var node: NodeOptions

    @OptionGroup var agent: HostAgentOptions

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        try node.validate()
        try agent.validate()
        try runtime.validate()
        try apiTLS.validate()
    }

    func run() async throws {
        let (host, port) = try parseAddress(api)
        // The host agent registers this machine as a host when /dev/kvm is usable; without it,
        // or with --no-host-agent, it is not a host (it could not run the VMs placed on it).
        var configuration = NodeConfiguration(
            dataDirectory: dataDir, nodeID: "dev", region: "local", apiHost: host, apiPort: port,
            hostAgent: try agent.configuration(defaultName: hostName()))
        configuration.apiTLS = try apiTLS.configuration()
        try node.apply(to: &configuration)
        try await runNode(configuration, logLevel: node.level, eventLoops: runtime.eventLoops)
    }

    /// This machine's name as a DNS label ("dev-host" if nothing usable is left).
    func hostName() -> String {
        let raw = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        var name = String(raw.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
        name = String(name.prefix(63)).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return name.isEmpty ? "dev-host" : name
    }
}

/// Opens the node and runs it with its API until a signal asks for a graceful shutdown.
func runNode(_ configuration: NodeConfiguration, logLevel: Logger.Level, eventLoops: Int) async throws {
    // Tasks run on NIO's event loops, the threads that already read and write every socket,
    // instead of on a second pool of threads: a request, its intent and its Raft messages no
    // longer hop between the two on every step (BENCHMARKS.md, bench/region, item 11). Tasks
    // must therefore not wait for the disk: see docs/architecture.md, Threads, for where that
    // work goes. The number of loops is set before anything uses NIO's shared group.
    NIOSingletons.groupLoopCountSuggestion = eventLoops
    let onEventLoops = EventLoopExecutor.install()
    LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: logLevel) }
    let logger = Logger(label: "dwcp")
    if !onEventLoops {
        logger.notice(
            "tasks run on the cooperative pool: another global-executor hook is installed, or this toolchain is not one it knows"
        )
    }
    var listeners = [(host: configuration.apiHost, port: configuration.apiPort, flag: "--api")]
    if let replication = configuration.replication {
        listeners.append((replication.listenHost, replication.listenPort, "--listen"))
    }
    try ListenPreflight.check(listeners)
    // (Trapped before the node opens: see CertificateReloader.)
    let hangups = await UnixSignalsSequence(trapping: .sighup)
    let node: Node
    do {
        node = try Node(configuration: configuration, logger: logger)
    } catch {
        // A full disk fails the start as an LMDB "Input/output error" or SQLite's "disk is full".
        let full = DiskSpace.blame(error, at: configuration.dataDirectory).map {
            " (\($0): free space there and start again)"
        }
        throw CLIError(.refused, "\(error); refusing to start\(full ?? "")")
    }
    let scheme = configuration.apiTLS == nil ? "" : "https://"
    let api = try NodeAPI.application(node: node, logger: logger) { port in
        let line =
            "dwcp: node \(configuration.nodeID) (region \(configuration.region)) listening on \(scheme)\(configuration.apiHost):\(port), data \(configuration.dataDirectory)\n"
        StandardStream.output.writeIgnoringClosedReader(line)
    }
    // Services shut down in reverse order: the node first (which ends open watches), then the API.
    // A node that stops on an error (a full disk, damage) shuts the API down gracefully too: the
    // error is the node's, and a cancelled API only added "Waiting on child channel:
    // CancellationError()" at error level after it.
    let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: NodeAPIService(node: node, api: api)),
        .init(service: node, failureTerminationBehavior: .gracefullyShutdownGroup),
        .init(service: CertificateReloader(node: node, logger: logger, hangups: hangups)),
    ]
    var groupConfiguration = ServiceGroupConfiguration(
        services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    // A graceful shutdown waits for the API's requests in progress; a stream whose client stopped
    // reading (`dwcp watch | less`, paused) would hold it, and the data directory's lock, for good.
    groupConfiguration.maximumGracefulShutdownDuration = .seconds(15)
    let group = ServiceGroup(configuration: groupConfiguration)
    do {
        try await group.run()
    } catch {
        // The replication port's failures are told by the node; what is left is the API's.
        let address = "\(configuration.apiHost):\(configuration.apiPort)"
        throw CLIError(.refused, "the node stopped: \(NodeError.listening(on: address, flag: "--api", error) ?? error)")
    }
}

/// How the process runs its tasks: the options `dwcp serve` and `dwcp dev` share.
struct RuntimeOptions: ParsableArguments {
    @Option(
        name: .long,
        help: """
            Event loops (threads) for the sockets and tasks: with one, every step of an intent stays on one \
            thread; more serve more API connections at once.
            """)
    var eventLoops = 1

    func validate() throws {
        guard (1...256).contains(eventLoops) else { throw ValidationError("--event-loops must be 1 to 256") }
    }
}

/// The host agent's flags, shared by `serve` and `dev`.
struct HostAgentOptions: ParsableArguments {
    @Flag(name: .long, help: "Do not run VMs on this machine, even when /dev/kvm is usable.")
    var noHostAgent = false

    @Option(
        name: .long,
        help: "The name this machine is registered under as a host (default: the node id; dev: the machine's name).")
    var hostName: String?

    @Option(name: .long, help: "Pre-warmed VMs kept ready for fast starts (0 turns the pool off).")
    var vmPool = 2

    @Option(name: .long, help: "Memory of the pre-warmed VMs; starts of other shapes take the cold path.")
    var vmPoolMemory = "256MiB"

    func validate() throws {
        try validating {
            if let hostName { try Validation.name(hostName, what: "host") }
            guard (0...64).contains(vmPool) else { throw ValidationError("invalid --vm-pool \(vmPool): use 0-64") }
            let bytes = try ByteSize.parse(vmPoolMemory)
            try Validation.vmMemory(bytes)
            // (1MiB passed, and the pool then failed to fill, saying so twice.)
            guard bytes >= 2 << 20 else {
                throw ValidationError("invalid --vm-pool-memory \(vmPoolMemory): a microVM needs at least 2MiB")
            }
        }
    }

    func configuration(defaultName: String) throws -> HostAgentConfiguration? {
        guard !noHostAgent else { return nil }
        return HostAgentConfiguration(
            hostName: hostName ?? defaultName, poolSize: vmPool, poolMemoryBytes: try ByteSize.parse(vmPoolMemory))
    }
}
