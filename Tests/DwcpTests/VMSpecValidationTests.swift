import Testing

@testable import dwcp

/// What `dwcp vm create` and `dwcp plan vm create` refuse before sending: bad command-line input
/// (exit 64), the same whatever part of it the node would have refused.
@Suite struct VMSpecValidationTests {
    func refusal(_ arguments: [String]) throws -> CLIError? {
        let spec = try VMCommand.Create.parse(arguments).spec
        do {
            _ = try spec.body()
            return nil
        } catch let error as CLIError {
            return error
        }
    }

    @Test("a batch whose last name is too long, or memory the image does not fit in, is a usage error")
    func refusedLocally() throws {
        let base = String(repeating: "b", count: 61)  // b…b-9 fits in 63 characters; b…b-10 does not
        let long = try refusal([base, "--count", "10", "--cpus", "1", "--memory", "8MiB"])
        #expect(
            long?.code == .usage && long?.message.contains("invalid VM name '\(base)-10'") == true,
            "\(String(describing: long))")
        #expect(try refusal([base, "--count", "9", "--cpus", "1", "--memory", "8MiB"]) == nil)
        let tiny = try refusal(["tiny", "--cpus", "1", "--memory", "1MiB"])
        #expect(tiny?.code == .usage && tiny?.message.contains("needs at least") == true, "\(String(describing: tiny))")
        #expect(
            try refusal(["x", "--count", "0", "--cpus", "1", "--memory", "8MiB"])?.message == "--count must be 1-1000")
        let spaced = try refusal(["x", "--cpus", "1", "--memory", "8MiB", "--label", "guest.note=hi interval_ms=3000"])
        #expect(spaced?.code == .usage && spaced?.message.contains("splits at spaces") == true)
        #expect(try refusal(["x", "--cpus", "1", "--memory", "8MiB", "--label", "note=hi there"]) == nil)
    }
}
