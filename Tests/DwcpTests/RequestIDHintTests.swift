import Testing

@testable import dwcp

@Suite struct RequestIDHintTests {
    @Test("a refusal that says to retry with the same request id names the one the CLI made up, once one went out")
    func madeUpRequestIDIsNamed() throws {
        let retry =
            "the intent has not committed within 10 s; it may still apply once they do: retry it with the same request id"
        let given = try HostCommand.Add.parse(["h1", "--cpus", "1", "--memory", "1GiB", "--request-id", "mine"])
        #expect(given.intent.resolvedRequestID == "mine")
        let unnamed = try HostCommand.Add.parse(["h1", "--cpus", "1", "--memory", "1GiB"])
        let id = unnamed.intent.resolvedRequestID
        #expect(id == IntentOptions.madeUpID && unnamed.intent.resolvedRequestID == id, "one id per process")
        #expect(Main.withRequestID(retry) == retry + " (--request-id \(id))")
        #expect(Main.withRequestID("host h1 already exists") == "host h1 already exists")
    }
}
