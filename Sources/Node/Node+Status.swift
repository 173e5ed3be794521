import BuildInfo
import NIOPosix
import Store

/// What `dwcp status` shows about a node.
public struct NodeStatus: Sendable, Codable {
    public var nodeID: String
    public var region: String
    /// What this node is in its region: `leader`, `follower`, `learner`, `preCandidate` or
    /// `candidate`, `not a member` (removed, or not yet added), or `single node`.
    public var role: String
    /// The leader it knows of and its term; nil for a single node (and no leader while none is known).
    public var leader: String?
    public var term: UInt64?
    public var dataDirectory: String
    public var firstIndex: UInt64
    public var lastIndex: UInt64
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var logMapBytes: Int
    /// This dwcp's version, and the schema version of its views.
    public var version: String
    public var schemaVersion: String
    /// How the API is secured: `plain` (HTTP), `https`, or `mutual` (HTTPS taking only clients
    /// with a certificate of its trusted authority).
    public var apiTLS: String
    /// How the replication port is secured: `plain`, `mutual` (TLS between members), or `none`
    /// (a single node without one).
    public var replicationTLS: String
    /// Where the node's tasks run, as seen by the task answering: `event-loops` (NIO's, the threads
    /// that serve the sockets; `dwcp serve` and `dwcp dev` arrange it) or `cooperative-pool`
    /// (Swift's default, a thread hop at every step).
    public var tasks: String
    /// Why the views were found damaged while the node runs (``ViewStore/damageFound``): the
    /// next start rebuilds them from the log. Nil while none was found.
    public var viewsDamaged: String?

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id"
        case region
        case role
        case leader
        case term
        case dataDirectory = "data_dir"
        case firstIndex = "first_index"
        case lastIndex = "last_index"
        case commitIndex = "commit_index"
        case appliedIndex = "applied_index"
        case logMapBytes = "log_map_bytes"
        case version
        case schemaVersion = "schema_version"
        case apiTLS = "api_tls"
        case replicationTLS = "replication_tls"
        case tasks
        case viewsDamaged = "views_damaged"
    }
}

extension Node {
    /// This dwcp's version, the release and the commit it was built at (`dwcp --version`,
    /// `GET /v1/status`, every member in `dwcp cluster status`).
    public static var version: String { BuildInfo.version }

    public func status() -> NodeStatus {
        let replicated = raft?.status
        return NodeStatus(
            nodeID: configuration.nodeID, region: configuration.region,
            role: replicated?.role(of: configuration.nodeID) ?? "single node", leader: replicated?.leader,
            term: replicated?.term, dataDirectory: configuration.dataDirectory,
            firstIndex: log.firstIndex, lastIndex: log.lastIndex, commitIndex: consensus.committed.value,
            appliedIndex: applied.value, logMapBytes: log.mapSize, version: Node.version,
            schemaVersion: ViewStore.schemaVersion,
            apiTLS: apiTLS.map { $0.verifiesClients ? "mutual" : "https" } ?? "plain",
            replicationTLS: configuration.replication.map { $0.tls == nil ? "plain" : "mutual" } ?? "none",
            tasks: MultiThreadedEventLoopGroup.currentEventLoop != nil ? "event-loops" : "cooperative-pool",
            viewsDamaged: views.damageFound)
    }
}
