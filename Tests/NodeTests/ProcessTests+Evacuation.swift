import Foundation
import TestSupport
import Testing

extension ProcessTests {
    @Test(
        "dwcp host evacuate refuses a host that is ready and one that is unknown; host remove suggests it only for a host an agent runs"
    )
    func evacuateRefusals() async throws {
        let dir = TemporaryDirectory()
        let node = try DwcpProcess(Self.serve(dir.file("data")), directory: dir, tag: "node")
        defer { node.kill(SIGKILL) }
        let server = ["--server", "127.0.0.1:\(try await node.waitForPort())"]
        var (status, out, err) = try await runCLI(
            ["host", "add", "h1", "--region", "eu", "--cpus", "8", "--memory", "16GiB"] + server, in: dir)
        #expect(status == 0, "\(err)")
        (status, out, err) = try await runCLI(
            ["vm", "create", "web-1", "--cpus", "2", "--memory", "1GiB"] + server, in: dir)
        #expect(out.contains("scheduled on h1"), "\(out)\(err)")
        (status, _, err) = try await runCLI(["host", "remove", "h1"] + server, in: dir)
        // Added by hand, it is never found not ready: evacuating it is not suggested.
        #expect(status == 1 && err.contains("delete them first (moving") && !err.contains("evacuate"), "\(err)")
        // h1 was added by hand: ready for good, and placement would put its VMs back on it.
        (status, _, err) = try await runCLI(["host", "evacuate", "h1"] + server, in: dir)
        #expect(status == 1 && err.contains("host h1 is ready: placement would put its VMs back on it"), "\(err)")
        (status, _, err) = try await runCLI(["host", "evacuate", "h9"] + server, in: dir)
        #expect(status == 1 && err.contains("no host named h9"), "\(err)")
        (status, _, err) = try await runCLI(["host", "evacuate", "-bad-"] + server, in: dir)
        #expect(status == 64, "\(err)")
        (status, out, _) = try await runCLI(
            ["sql", "SELECT count(*) AS n FROM intents WHERE kind = 'host.evacuate'", "--format", "csv"] + server,
            in: dir)
        #expect(out == "n\r\n0\r\n", "refusals wrote nothing: \(out)")
    }
}
