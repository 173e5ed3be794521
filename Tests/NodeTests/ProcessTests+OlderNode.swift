import Foundation
import GRDB
import TestSupport
import Testing

extension ProcessTests {
    @Test(
        "vm list and host list ask a node whose views predate the columns they read (an upgrade under way) for what it has"
    )
    func listsOnAnOlderNode() async throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        var node = try DwcpProcess(Self.serve(data), directory: dir, tag: "node")
        var server = ["--server", "127.0.0.1:\(try await node.waitForPort())"]
        var (status, _, err) = try await runCLI(
            ["host", "add", "h1", "--region", "eu", "--cpus", "8", "--memory", "16GiB"] + server, in: dir)
        #expect(status == 0, "\(err)")
        (status, _, err) = try await runCLI(
            ["vm", "create", "web-1", "--cpus", "2", "--memory", "1GiB"] + server, in: dir)
        #expect(status == 0, "\(err)")
        node.kill(SIGTERM)
        #expect(try await node.waitForExit() == 0)
        // The views as schema 010 left them: no hosts.state_reason (nor agent).
        try await DatabaseQueue(path: data + "/views.sqlite").write { db in
            try db.execute(sql: "ALTER TABLE hosts DROP COLUMN state_reason; ALTER TABLE hosts DROP COLUMN agent")
        }
        node = try DwcpProcess(Self.serve(data), directory: dir, tag: "again")
        defer { node.kill(SIGKILL) }
        server = ["--server", "127.0.0.1:\(try await node.waitForPort())"]
        var out: String
        (status, out, err) = try await runCLI(["sql", "SELECT state_reason FROM hosts"] + server, in: dir)
        #expect(status != 0 && err.contains("no such column"), "the views still have the column: \(out)\(err)")
        (status, out, err) = try await runCLI(["vm", "list", "--format", "csv"] + server, in: dir)
        #expect(status == 0, "\(err)")
        #expect(
            out == "name,region,host,cpus,memory_bytes,desired_state,actual_state,reason\r\n"
                + "web-1,eu,h1,2,1073741824,running,scheduled,placed on h1; waiting for its host agent\r\n",
            "\(out)\(err)")
        (status, out, err) = try await runCLI(["host", "list", "--format", "csv", "--region", "eu"] + server, in: dir)
        #expect(status == 0, "\(err)")
        #expect(
            out == "name,region,state,cpus,cpus_used,memory_bytes,memory_used_bytes,vms,labels,reason\r\n"
                + "h1,eu,ready,8,2,17179869184,1073741824,1,{},\r\n",
            "\(out)\(err)")
    }
}

extension ProcessTests {
    @Test("dwcp host evacuate refuses a host that is ready and one that is unknown; host remove points to it")
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
        #expect(status == 1 && err.contains("or, if the host is down, evacuate it (dwcp host evacuate h1)"), "\(err)")
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
