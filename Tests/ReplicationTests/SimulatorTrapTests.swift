import ChildProcess
import Foundation
import Testing

/// A trap in the code the simulator runs stops its process; the seed it was running is said first,
/// with the command that replays it (`dwcp-sim`'s `RunningSeedNote`), where it used to be lost.
@Suite struct SimulatorTrapTests {
    @Test("dwcp-sim stopped by a trap's signal names the seed and members it was running")
    func aTrapNamesItsSeed() async throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("dwcp-sim").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "no dwcp-sim at \(binary): run swift build")
        let stderr = FileManager.default.temporaryDirectory.appendingPathComponent("dwcp-sim-\(UUID()).err")
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: stderr) }
        // Without Swift's backtracer: the line under test is dwcp-sim's own, and the backtracer's
        // full symbolication of the debug binary took a core for up to a minute in the middle of
        // the suite, and was left behind when the test ended the process.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        let process = try SpawnedProcess(
            binary, ["--seeds", "100000", "--first", "700"], environment: environment, stderr: .file(stderr.path))
        defer { process.kill(SIGKILL) }
        // Once it runs seeds (0.2 s of CPU: its handler is in place before the first), however
        // busy the machine is.
        for _ in 0..<400 {
            let stat = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)) ?? ""
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            if fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]), user + system >= 20 {
                break
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        // The signal a failed precondition raises (ud2), sent from outside at an unknown moment.
        process.kill(SIGILL)
        var said = ""
        for _ in 0..<100 where !said.contains("replay") {
            try await Task.sleep(for: .milliseconds(50))
            said = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
        }
        let line = try #require(said.split(separator: "\n").first { $0.hasPrefix("dwcp-sim: stopped in seed") })
        let words = line.split(separator: " ")
        let seed = try #require(UInt64(words[4]))
        #expect(seed >= 700 && seed < 100_700)
        #expect(words[6] == "3" || words[6] == "5")
        #expect(line.hasSuffix("--seed \(seed) --nodes \(words[6]) --trace"))
    }
}
