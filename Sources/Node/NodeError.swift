/// An error the node reports to a client: a stable code (which also picks the HTTP status), a
/// one-line message, and the underlying cause when there is one.
public struct NodeError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, Codable {
        /// The request is malformed: a bad name, size, count or field.
        case invalid
        /// The named host or VM does not exist.
        case notFound = "not_found"
        /// The request conflicts with the fleet's state (a name taken, a host in use).
        case conflict
        /// Log entries before this index were compacted away.
        case compacted
        /// A query was refused or failed.
        case query
        /// This member was removed from its region: it takes no intents or reads until it joins again.
        case removed
        /// The node cannot serve (shutting down, or its log is damaged).
        case unavailable
        /// The filesystem holding the data directory is full: nothing was written.
        case diskFull = "disk_full"
        case `internal`
    }

    public let code: Code
    public let message: String
    public let cause: (any Error & Sendable)?
    /// Where the leader's API listens, when the request must go to the leader and this member knows
    /// (the API answers it as `leader_api`; the CLI sends the request there).
    public var leaderAPI: String?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil, leaderAPI: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
        self.leaderAPI = leaderAPI
    }

    public var description: String { message }
}
