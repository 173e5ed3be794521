import ArgumentParser
import Testing

@testable import dwcp

/// A single-valued option given twice is refused (ArgumentParser would keep the last one).
@Suite struct RepeatedOptionsTests {
    static func refusal(_ command: any ParsableCommand.Type, _ arguments: [String]) -> String? {
        do {
            try RepeatedOptions.check(command, arguments: arguments)
            return nil
        } catch let error as CLIError {
            return error.code == .usage ? error.message : "not a usage error: \(error.message)"
        } catch {
            return "\(error)"
        }
    }

    @Test("an option that takes one value, given twice, in either spelling, is refused naming both values")
    func refused() {
        #expect(
            Self.refusal(
                VMCommand.Create.self, ["vm", "create", "x", "--cpus", "16", "--memory", "1GiB", "--cpus", "8"])
                == "--cpus is given twice ('16', then '8'): it takes one value, give it once")
        #expect(Self.refusal(VMCommand.Create.self, ["vm", "create", "x", "--cpus=16", "--cpus", "8"]) != nil)
        #expect(
            Self.refusal(Serve.self, ["serve", "--data-dir", "a", "--data-dir", "b"])?.contains("--data-dir") == true)
    }

    @Test("repeatable options, flags, and words after -- may repeat")
    func allowed() {
        #expect(
            Self.refusal(
                VMCommand.Create.self, ["vm", "create", "x", "--label", "a=1", "--label", "b=2", "--json", "--json"])
                == nil)
        #expect(Self.refusal(Serve.self, ["serve", "--peer", "n1@h:1", "--peer", "n2@h:2"]) == nil)
        #expect(Self.refusal(VMCommand.Create.self, ["vm", "create", "--cpus", "1", "--", "--cpus"]) == nil)
    }
}
