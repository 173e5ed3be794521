import Foundation

/// Why the virtual machine monitor could not do what it was asked: a code callers branch on, a
/// message for people, and the underlying cause (an errno, a file error) when there is one.
public struct HypervisorError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// `/dev/kvm` is missing, not accessible, or of an API this VMM does not speak.
        case unavailable
        /// A guest image that is not there or is not a valid image.
        case invalidImage
        /// A VM shape or request the VMM cannot honour (memory size, vCPU count, state).
        case invalidRequest
        /// A KVM ioctl or a system call failed.
        case system
        /// A snapshot that is missing, damaged or of another format.
        case invalidSnapshot
    }

    public let code: Code
    public let message: String
    public let cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// A failed system call, with errno as the cause.
    static func system(_ what: String, errno code: Int32 = errno) -> HypervisorError {
        HypervisorError(
            .system, "\(what) failed: \(String(cString: strerror(code)))",
            cause: POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO))
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}
