import Foundation

/// The process's standard output or error, written without Foundation's `FileHandle.write`, which
/// traps when the reader has gone (`EPIPE`: `dwcp watch | head -1` crashed with a stack trace).
/// A command whose reader has gone ends as a Unix tool does then: by SIGPIPE, silently (a shell
/// reports status 141). `dwcp serve` goes on instead (``writeIgnoringClosedReader(_:)``).
enum StandardStream {
    case output
    case error

    private var descriptor: Int32 { self == .output ? STDOUT_FILENO : STDERR_FILENO }

    /// Writes `text`; ends the process by SIGPIPE when no one reads the stream any more.
    func write(_ text: String) { write(Array(text.utf8)) }

    /// Writes `bytes`; ends the process by SIGPIPE when no one reads the stream any more.
    func write(_ bytes: [UInt8]) {
        if writeAll(bytes) == EPIPE { Self.endAsReaderGone() }
    }

    /// Writes `text`, and carries on when no one reads the stream (a node's start-up line: the
    /// node keeps serving).
    func writeIgnoringClosedReader(_ text: String) { _ = writeAll(Array(text.utf8)) }

    /// Writes all of `bytes`, through partial writes and interruptions; the `errno` of a failed
    /// write, or nil.
    private func writeAll(_ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return nil
        }
    }

    /// Ends the process the way the kernel ends a writer whose reader has gone when SIGPIPE is
    /// not ignored (the runtime ignores it, so the write failed with EPIPE instead).
    private static func endAsReaderGone() -> Never {
        signal(SIGPIPE, SIG_DFL)
        raise(SIGPIPE)
        exit(128 + SIGPIPE)
    }
}
