import Testing

@testable import dwcp

@Suite struct ServeOptionTests {
    /// What the CLI prints for `dwcp serve` with `arguments` after the data directory, node id n1
    /// and region eu: the message `Main` writes after "dwcp: ", or nil when they are accepted.
    func message(_ arguments: [String]) -> String? {
        let all = ["serve", "--data-dir", "/tmp/x", "--node-id", "n1", "--region", "eu"] + arguments
        do {
            _ = try Dwcp.parseAsRoot(all)
            return nil
        } catch {
            return Main.usageMessage(for: error, arguments: all)
        }
    }

    @Test(
        "two members at one replication address, or the API on the replication port, are refused as the flags are read")
    func addressesEachTheirOwn() {
        let region = ["--listen", "127.0.0.1:7301", "--peer", "n2@127.0.0.1:7302"]
        #expect(message(region + ["--peer", "n3@127.0.0.1:7303"]) == nil)
        #expect(message(region + ["--peer", "n1@127.0.0.1:7301"]) == nil)
        #expect(
            message(region + ["--peer", "n3@127.0.0.1:7302"])?.contains(
                "--peer gives n3 the address of n2, 127.0.0.1:7302: each member needs a replication address of its own")
                == true)
        #expect(
            message(region + ["--peer", "n3@127.0.0.1:7301"])?.contains(
                "--peer gives n3 the address of n1, 127.0.0.1:7301")
                == true)
        #expect(
            message(region + ["--api", "127.0.0.1:7301"])?.contains(
                "--api and --listen both name 127.0.0.1:7301: the API and the replication port need a port each")
                == true)
    }

    @Test("a pool's VMs need the 2MiB a microVM needs (1MiB passed the flags and failed to fill)")
    func poolMemory() {
        #expect(message(["--vm-pool-memory", "1MiB"])?.contains("a microVM needs at least 2MiB") == true)
        #expect(message(["--vm-pool-memory", "2MiB"]) == nil)
    }

    @Test("millisecond flags take 300, 300ms or 0.3s (10ms was 'invalid')")
    func milliseconds() {
        let region = ["--listen", "127.0.0.1:7301", "--peer", "n2@127.0.0.1:7302"]
        for value in ["1000", "1000ms", "1s", "1.5s"] {
            #expect(message(region + ["--election-timeout", value]) == nil, "\(value)")
        }
        #expect(message(region + ["--follower-apply-delay", "10ms"]) == nil)
        #expect(
            message(region + ["--election-timeout", "10ms"])?.contains("must be 100 to 60000 milliseconds") == true)
        #expect(message(region + ["--election-timeout", "1.0005s"]) != nil)
        #expect(MillisecondsArgument(argument: "1.5s")?.value == 1500)
        #expect(MillisecondsArgument(argument: "ten") == nil)
    }
}
