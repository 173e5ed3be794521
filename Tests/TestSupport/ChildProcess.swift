import Foundation

/// What a program run by ``runToEnd(_:_:)`` left: its exit status and what it printed.
public struct ChildProcessResult: Sendable {
    public let status: Int32
    public let output: String
    public let errors: String
}

/// Runs `executable` with `arguments` to its end and returns its status and what it printed on
/// stdout and stderr. Only for programs that print little: each pipe is read once the program
/// has ended, so one that printed more than a pipe holds (64 KiB) would wait for ever.
///
/// It waits without holding a thread: `Process.waitUntilExit()` spins a run loop on the calling
/// thread, and a test that called it held one of the two cooperative threads of a 2-core machine,
/// for seconds at the start of a full run, while every other test waited.
public func runToEnd(_ executable: String, _ arguments: [String]) async throws -> ChildProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = FileHandle.nullDevice
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { ended in continuation.resume(returning: ended.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    return ChildProcessResult(
        status: status,
        output: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
        errors: String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
}
