import ChildProcess
import Foundation
import Testing

/// The tests' own child processes (``SpawnedProcess``): how they end is read as it happened.
@Suite struct SpawnedProcessTests {
    @Test("a child's exit status and the signal that ended it are told apart; a dead child is not signalled")
    func endings() async throws {
        let exits = try SpawnedProcess("/bin/sh", ["-c", "exit 3"])
        #expect(await exits.waitUntilExit() == .exited(3))
        #expect(exits.terminationStatus == 3 && !exits.isRunning && exits.ended != nil)
        let sleeper = try SpawnedProcess("/bin/sleep", ["30"])
        #expect(sleeper.isRunning)
        sleeper.kill(SIGTERM)
        #expect(await sleeper.waitUntilExit() == .signalled(SIGTERM))
        sleeper.kill(SIGKILL)  // (reaped: sends nothing)
        #expect(sleeper.termination == .signalled(SIGTERM))
    }

    @Test("a child holds no descriptor of the tests but its three streams")
    func descriptorsClosed() async throws {
        let output = Pipe()
        let extra = Pipe()  // not close-on-exec: Foundation's Pipe sets no flag
        let child = try SpawnedProcess(
            "/bin/sh", ["-c", "ls /proc/self/fd"], stdout: .descriptor(output.fileHandleForWriting.fileDescriptor))
        try output.fileHandleForWriting.close()
        #expect(await child.waitUntilExit() == .exited(0))
        let listed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "\n").compactMap { Int($0) }
        // 0-2, and the descriptor ls opened to list the directory: not the pipes' (four at least).
        #expect(listed.filter { $0 > 2 }.count <= 1, "\(listed)")
        withExtendedLifetime(extra) {}
    }
}
