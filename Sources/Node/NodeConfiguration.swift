/// Everything a node needs to start: where its data lives, who it is, where it listens.
public struct NodeConfiguration: Sendable {
    public var dataDirectory: String
    public var nodeID: String
    public var region: String
    public var apiHost: String
    /// 0 picks a free port (tests); the bound port is reported once the API is up.
    public var apiPort: Int
    /// A host to register once the node is up, unless a host of that name exists (`dwcp dev`).
    public var registerHost: HostRegistration?
    public var queryLimits: QueryLimitsConfiguration
    /// How long `vm create` waits for the scheduler's answer before returning.
    public var placementWait: Duration

    public init(
        dataDirectory: String, nodeID: String, region: String, apiHost: String = "127.0.0.1", apiPort: Int = 7070,
        registerHost: HostRegistration? = nil, queryLimits: QueryLimitsConfiguration = .init(),
        placementWait: Duration = .seconds(2)
    ) {
        self.dataDirectory = dataDirectory
        self.nodeID = nodeID
        self.region = region
        self.apiHost = apiHost
        self.apiPort = apiPort
        self.registerHost = registerHost
        self.queryLimits = queryLimits
        self.placementWait = placementWait
    }

    public var logPath: String { dataDirectory + "/log" }
    public var viewsPath: String { dataDirectory + "/views.sqlite" }
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

/// Limits for `dwcp sql` on this node.
public struct QueryLimitsConfiguration: Sendable {
    public var timeoutMilliseconds: Int
    public var maxRows: Int

    public init(timeoutMilliseconds: Int = 5_000, maxRows: Int = 100_000) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxRows = maxRows
    }
}
