import Query

/// Everything a node needs to start: where its data lives, who it is, where it listens.
public struct NodeConfiguration: Sendable {
    public var dataDirectory: String
    public var nodeID: String
    public var region: String
    public var apiHost: String
    /// 0 picks a free port (tests); the bound port is reported once the API is up.
    public var apiPort: Int
    /// HTTPS on the API (and mutual TLS with a trusted authority), or nil for plain HTTP.
    public var apiTLS: APITLS?
    /// A host to register once the node is up, unless a host of that name exists (`dwcp dev`).
    public var registerHost: HostRegistration?
    /// Limits for `dwcp sql` on this node.
    public var queryLimits: QueryLimits
    /// How long `vm create` waits for the scheduler's answer before returning.
    public var placementWait: Duration
    /// Runs VMs on this machine when /dev/kvm is usable; nil for a node without a host agent.
    public var hostAgent: HostAgentConfiguration?
    /// Replicates the log with Raft across the region's members; nil for a one-member node (`dwcp dev`).
    public var replication: ReplicationConfiguration?
    /// Take a views snapshot (`DATA/snapshots`) and compact the log behind it every this many
    /// applied entries, on a single node and in a region alike.
    public var snapshotEvery: UInt64 = Self.defaultSnapshotEvery
    /// A snapshot copies and fsyncs the whole views file, and that fsync flushes the disk's cache,
    /// so the log's fsyncs wait behind it: keep snapshots rare, as etcd does (its
    /// `--snapshot-count` default is also 100,000; measured against 10,000: BENCHMARKS.md,
    /// bench/region, item 13).
    public static let defaultSnapshotEvery: UInt64 = 100_000
    /// How long the history tables (`intents`, `vm_events`, `vm_starts`, `placements`) keep a
    /// row before the leader compacts it away (``HistoryCompactor``); nil keeps everything. The
    /// leader's setting is the one that counts.
    public var historyRetention: Duration? = Self.defaultHistoryRetention
    /// A week: long enough to look back on an incident, short enough that a busy region's views
    /// (and the snapshots a new member catches up by) do not grow without end.
    public static let defaultHistoryRetention = Duration.seconds(7 * 86_400)
    /// The API closes a connection that has neither sent a request nor been answered for this
    /// long. Without it, a client that asked to close after a request whose body the node
    /// refused unread (one over 1 MiB) held its connection, and a descriptor, until the node
    /// stopped: HTTP/1.1 waits for the client's end of the connection, which sits behind the
    /// unread body. Longer than HTTP clients keep an idle connection in their pools (60 s for
    /// AsyncHTTPClient), so a pooled one is not closed under a request it is sending.
    public var apiIdleTimeout: Duration = .seconds(75)

    public init(
        dataDirectory: String, nodeID: String, region: String, apiHost: String = "127.0.0.1", apiPort: Int = 7070,
        registerHost: HostRegistration? = nil, queryLimits: QueryLimits = .init(),
        placementWait: Duration = .seconds(2), hostAgent: HostAgentConfiguration? = nil
    ) {
        self.dataDirectory = dataDirectory
        self.nodeID = nodeID
        self.region = region
        self.apiHost = apiHost
        self.apiPort = apiPort
        self.registerHost = registerHost
        self.queryLimits = queryLimits
        self.placementWait = placementWait
        self.hostAgent = hostAgent
    }

    public var logPath: String { dataDirectory + "/log" }
    public var viewsPath: String { dataDirectory + "/views.sqlite" }
    /// The host agent's per-VM files: `vms/NAME/console.log`, snapshots.
    public var vmsPath: String { dataDirectory + "/vms" }
}

/// The host a `dwcp dev` node registers for the machine it runs on.
public struct HostRegistration: Sendable {
    public var name: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var labels: [String: String]

    public init(name: String, cpus: Int, memoryBytes: Int64, labels: [String: String] = [:]) {
        self.name = name
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.labels = labels
    }
}

/// The host agent of a node that runs VMs on this machine (`dwcp serve` unless `--no-host-agent`).
public struct HostAgentConfiguration: Sendable {
    /// The name this machine is registered under as a host (default: the node id).
    public var hostName: String
    /// Pre-warmed VMs kept ready (0 turns the pool off), of this shape.
    public var poolSize: Int
    public var poolMemoryBytes: Int64
    public var poolVCPUs: Int
    /// Each VM's console file is rotated at this size (two files are kept).
    public var consoleLimitBytes: Int
    /// Labels the host is registered with, beyond `hypervisor=kvm`.
    public var labels: [String: String]
    /// The KVM device (`/dev/kvm`).
    public var kvmDevicePath: String

    public init(
        hostName: String, poolSize: Int = 2, poolMemoryBytes: Int64 = 256 << 20, poolVCPUs: Int = 1,
        consoleLimitBytes: Int = 1 << 20, labels: [String: String] = [:], kvmDevicePath: String = "/dev/kvm"
    ) {
        self.hostName = hostName
        self.poolSize = poolSize
        self.poolMemoryBytes = poolMemoryBytes
        self.poolVCPUs = poolVCPUs
        self.consoleLimitBytes = consoleLimitBytes
        self.labels = labels
        self.kvmDevicePath = kvmDevicePath
    }
}
