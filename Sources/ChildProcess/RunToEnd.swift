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
/// It waits without holding a thread (``SpawnedProcess/waitUntilExit()``): a test that blocked
/// one held one of the two cooperative threads of a 2-core machine while every other test waited.
public func runToEnd(_ executable: String, _ arguments: [String]) async throws -> ChildProcessResult {
    let output = Pipe()
    let errors = Pipe()
    let process = try SpawnedProcess(
        executable, arguments,
        stdout: .descriptor(output.fileHandleForWriting.fileDescriptor),
        stderr: .descriptor(errors.fileHandleForWriting.fileDescriptor))
    // (This process's write ends closed: the reads below end when the child's do.)
    try output.fileHandleForWriting.close()
    try errors.fileHandleForWriting.close()
    await process.waitUntilExit()
    return ChildProcessResult(
        status: process.terminationStatus,
        output: String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
        errors: String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
}
