/// Why a query was refused or failed. The message is one line, fit for a terminal.
public struct QueryError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable, Codable {
        case readOnly = "read_only"
        case syntax
        case timeout
        /// The statement ran long while as many others did, and as many waited to (``QueryLimits``).
        case busy
        case tooManyRows = "too_many_rows"
        case tooLarge = "too_large"
        case unknownCommand = "unknown_command"
        case empty
        /// SQLite found the views damaged; the next start of the node rebuilds them from the log.
        case damaged
        case failed
    }

    public let code: Code
    public let message: String
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
