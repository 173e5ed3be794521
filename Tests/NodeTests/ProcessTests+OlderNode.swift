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
