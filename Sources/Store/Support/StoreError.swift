/// An error from the store: the log, its records or the views. It names what failed and why.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; stable, for programs to branch on.
    public enum Code: String, Sendable {
        case lmdb
        case corruptEntry = "corrupt_entry"
        case unsupportedVersion = "unsupported_version"
        case unknownRecord = "unknown_record"
        case malformedRecord = "malformed_record"
        case compacted
        case notContiguous = "not_contiguous"
        case closed
        /// The log's redo journal could not be read or written.
        case journal
        case views
    }

    public let code: Code
    public let message: String
    /// The log index concerned, when there is one.
    public let index: UInt64?
    /// The underlying error, when there is one.
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, index: UInt64? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.index = index
        self.cause = cause
    }

    public var description: String {
        // (A message that already quotes its cause, as a damaged views' does, says it once.)
        if let cause, !message.contains("\(cause)") { return "\(message) (\(cause))" }
        return message
    }
}
