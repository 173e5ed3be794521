import ArgumentParser
import Node

/// A failure the CLI reports as one line on stderr (`dwcp: MESSAGE`) with a non-zero exit status.
struct CLIError: Error, CustomStringConvertible {
    enum Code: String {
        /// The node could not be reached.
        case unreachable
        /// The node answered with an error.
        case refused
        /// Bad command-line input.
        case usage
        /// The node's answer could not be understood.
        case protocolError = "protocol"
        /// `dwcp cluster verify` found members whose views differ (exit status 2).
        case differs
    }

    let code: Code
    let message: String
    let cause: (any Error)?
    /// For ``Code/refused``: the HTTP status the node answered.
    var httpStatus: UInt?
    /// For ``Code/refused``: the leader's API address, when the node is not the leader and knows it.
    var leaderAPI: String?

    init(_ code: Code, _ message: String, cause: (any Error)? = nil, httpStatus: UInt? = nil, leaderAPI: String? = nil)
    {
        self.code = code
        self.message = message
        self.cause = cause
        self.httpStatus = httpStatus
        self.leaderAPI = leaderAPI
    }

    var description: String { message }
}

/// Runs local validation, turning its error into a usage error.
func usage<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as NodeError {
        throw CLIError(.usage, error.message)
    }
}

/// Runs the checks of a command's `validate()`: a refusal of the node's validation or of the
/// CLI's own parsing becomes a `ValidationError`, the only error ArgumentParser reports from
/// `validate()` as a usage error (exit status 64) rather than a failure.
func validating(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as NodeError {
        throw ValidationError(error.message)
    } catch let error as CLIError {
        throw ValidationError(error.message)
    }
}
