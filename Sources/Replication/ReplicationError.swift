/// An error of the replication layer: a code to branch on, a message for people, and the cause.
public struct ReplicationError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// This node is not the leader; `leader` names the one it knows of, if any.
        case notLeader
        /// A leadership transfer is under way; proposals wait for the new leader.
        case transferring
        /// A membership change that cannot be made (already a member, last voter, one pending).
        case invalidChange
        /// Bytes that do not decode: a frame, a message, a membership entry.
        case malformed
        /// A frame larger than the transport accepts.
        case oversized
        /// A connection that speaks another protocol (TLS) where frames were expected.
        case foreignProtocol
        /// A connection that owes bytes (its first frame, or the rest of one) and sends none.
        case stalled
        /// An HTTP request where frames were expected (answered in HTTP before the connection closes).
        case httpRequest
        /// An intact frame of a message type this build does not know (a newer member's): the
        /// transport skips it and keeps the connection.
        case unknownMessage
        /// The group cannot answer now (no quorum, shutting down, timed out).
        case unavailable
        /// A setting the transport cannot start with (a certificate or key file it cannot use).
        case invalidConfiguration
    }

    public let code: Code
    public let message: String
    /// The leader this node knows of, for `.notLeader`.
    public let leader: String?
    public let cause: (any Error)?

    public init(_ code: Code, _ message: String, leader: String? = nil, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.leader = leader
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }
}
