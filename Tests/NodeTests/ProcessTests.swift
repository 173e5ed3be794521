import AsyncHTTPClient
import ChildProcess
import Foundation
import Hypervisor
import NIOCore
import NIOHTTP1
import Node
import Schema
import Synchronization
import TestSupport
import Testing

@testable import Store

/// A `dwcp` process started by a test, with its stdout and stderr in files.
final class DwcpProcess: Sendable {
    let process: SpawnedProcess
    let stdoutPath: String
    let stderrPath: String
    /// When the process was started.
    let started = ContinuousClock.now

    /// The built `dwcp` next to the test bundle (or `$DWCP_BINARY`).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["DWCP_BINARY"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundle.appendingPathComponent("dwcp").path
    }

    /// With `runAs`, the process runs as that user and group (through `setpriv`, so the test
    /// must run as root), from `binary` (a copy that user can reach: the build may sit in a
    /// directory only root may enter).
    init(
        _ arguments: [String], directory: TemporaryDirectory, tag: String = UUID().uuidString.prefix(6).lowercased(),
        runAs: (uid: UInt32, gid: UInt32)? = nil, binary: String? = nil
    ) throws {
        stdoutPath = directory.file("stdout-\(tag)")
        stderrPath = directory.file("stderr-\(tag)")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw CLIFailure("the dwcp binary is not at \(Self.binary); run 'swift build' first (make test does)")
        }
        if let runAs {
            process = try SpawnedProcess(
                "/usr/bin/setpriv",
                ["--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", "--clear-groups", "--", binary ?? Self.binary]
                    + arguments,
                stdout: .file(stdoutPath), stderr: .file(stderrPath))
        } else {
            process = try SpawnedProcess(Self.binary, arguments, stdout: .file(stdoutPath), stderr: .file(stderrPath))
        }
    }

    /// Waits for the process to end and returns when it did: the instant the thread waiting for
    /// it saw its end, not when a test task resumed (a full run's tasks queue for the cooperative
    /// pool's threads).
    func waitForEnd(timeout: Duration = .seconds(30)) async throws -> ContinuousClock.Instant {
        _ = try await waitForExit(timeout: timeout)
        guard let end = process.ended else { throw CLIFailure("dwcp \(process.arguments) ended, but not its end") }
        return end
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits for the "listening on HOST:PORT" line and returns the port.
    func waitForPort(timeout: Duration = .seconds(30)) async throws -> Int {
        let port = try await waitForValue(within: timeout) { () throws -> Int? in
            let printed = stdout
            if let range = printed.range(
                of: #"listening on (https://)?127\.0\.0\.1:(\d+)"#, options: .regularExpression)
            {
                return Int(printed[range].split(separator: ":").last!)!
            }
            guard process.isRunning else { throw CLIFailure("dwcp exited early: \(stderr)") }
            return nil
        }
        guard let port else { throw CLIFailure("dwcp did not start listening within \(timeout): \(stderr)") }
        return port
    }

    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                throw CLIFailure("dwcp \(process.arguments) did not exit: \(stderr)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    func kill(_ signal: Int32) { process.kill(signal) }

    /// Sends SIGSTOP and returns once every thread of the process has stopped. `kill` returns
    /// before that: the kernel hands a process-wide stop to one thread, which stops the others
    /// only when it next runs, and on a loaded machine the process's other threads (its event
    /// loop) may go on for milliseconds meanwhile: long enough to acknowledge an entry sent after
    /// the signal.
    func freeze(timeout: Duration = .seconds(10)) async throws {
        kill(SIGSTOP)
        let tasks = "/proc/\(process.processIdentifier)/task"
        let stopped = try await waitForValue(within: timeout, every: .milliseconds(1)) { () -> Bool? in
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []
            let states = threads.compactMap { thread -> Character? in
                // "TID (COMM) STATE ...": the name may hold spaces and parentheses; the state follows the last ')'.
                guard let stat = try? String(contentsOfFile: "\(tasks)/\(thread)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { return nil }
                return stat[close...].dropFirst(2).first
            }
            return !states.isEmpty && states.allSatisfy({ $0 == "T" || $0 == "t" }) ? true : nil
        }
        if stopped == true { return }
        throw CLIFailure("process \(process.processIdentifier) did not stop within \(timeout) of SIGSTOP")
    }
}

/// The names the node acknowledged, appended to by concurrent clients.
final class Acknowledged: Sendable {
    let names = Mutex<[String]>([])
}

struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a short-lived `dwcp` command and returns its exit status, stdout and stderr.
func runCLI(_ arguments: [String], in directory: TemporaryDirectory) async throws -> (Int32, String, String) {
    let (status, stdout, stderr, _) = try await runTimedCLI(arguments, in: directory)
    return (status, stdout, stderr)
}

/// ``runCLI(_:in:)`` that also returns how long the command ran, from its start to its end as
/// ``DwcpProcess`` took them.
func runTimedCLI(_ arguments: [String], in directory: TemporaryDirectory) async throws -> (
    Int32, String, String, Duration
) {
    let process = try DwcpProcess(arguments, directory: directory)
    let end = try await process.waitForEnd()
    return (process.process.terminationStatus, process.stdout, process.stderr, process.started.duration(to: end))
}

/// Sends `body` with `method` (and `headers`) and returns the status and the answer's text.
func send(_ method: HTTPMethod, _ url: String, _ body: String, headers: [String: String] = [:]) async throws -> (
    Int, String
) {
    let (status, text, _) = try await exchange(method, url, body, headers: headers)
    return (status, text)
}

/// ``send(_:_:_:headers:)`` that also returns the answer's headers.
func exchange(_ method: HTTPMethod, _ url: String, _ body: String, headers: [String: String] = [:]) async throws -> (
    Int, String, HTTPHeaders
) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    request.body = .bytes(ByteBuffer(string: body))
    let response = try await httpClient(for: url).execute(request, timeout: .seconds(30))
    let text = String(buffer: try await response.body.collect(upTo: 1 << 24))
    return (Int(response.status.code), text, response.headers)
}

/// The client for `https://` URLs, set by a test whose nodes serve their API over HTTPS (it trusts
/// that test's authority and presents its client certificate); tests that use it are serialized.
let testHTTPSClient = Mutex<HTTPClient?>(nil)

/// The shared client for `http://`, ``testHTTPSClient`` for `https://`.
func httpClient(for url: String) -> HTTPClient {
    guard url.hasPrefix("https://") else { return .shared }
    return testHTTPSClient.withLock { $0 } ?? .shared
}

func post(_ url: String, _ body: String, headers: [String: String] = [:]) async throws -> (Int, String) {
    try await send(.POST, url, body, headers: headers)
}
func put(_ url: String, _ body: String) async throws -> (Int, String) { try await send(.PUT, url, body) }

/// The names of the VMs a node's views hold (`vm-C-I` names only), asked over SQL.
func vmNames(_ base: String) async throws -> Set<String> {
    let (status, body) = try await post(base + "/v1/sql", #"{"query":"SELECT name FROM vms","max_rows":100000}"#)
    guard status == 200 else { throw CLIFailure("SQL on \(base) answered \(status): \(body)") }
    return Set(body.matches(of: #/"(vm-\d+-\d+)"/#).map { String($0.output.1) })
}

/// The first line where two dumps differ, for a failure message that says what differs.
func firstDifference(_ a: String, _ b: String) -> String {
    let left = a.split(separator: "\n", omittingEmptySubsequences: false)
    let right = b.split(separator: "\n", omittingEmptySubsequences: false)
    for (number, pair) in zip(left, right).enumerated() where pair.0 != pair.1 {
        return "line \(number + 1): kept \(pair.0) / rebuilt \(pair.1)"
    }
    return "kept has \(left.count) lines, rebuilt \(right.count)"
}

@Suite(.serialized) struct ProcessTests {
    /// `dwcp serve` on `data` with an API on a free loopback port.
    static func serve(_ data: String) -> [String] {
        ["serve", "--data-dir", data, "--node-id", "n1", "--region", "eu", "--api", "127.0.0.1:0", "--no-host-agent"]
    }

    @Test("kill -9 mid-stream: every acknowledged intent survives, and the views equal a rebuild from the log")
    func crashMidStream() async throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        let serve = Self.serve(data)
        let first = try DwcpProcess(serve, directory: dir, tag: "first")
        let port = try await first.waitForPort()
        let base = "http://127.0.0.1:\(port)"
        #expect(
            try await post(base + "/v1/hosts", #"{"name":"h1","cpus":65536,"memory_bytes":1125899906842624}"#).0 == 200)

        let acknowledged = Acknowledged()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<8 {
                group.addTask {
                    for i in 0..<1000 {
                        let name = "vm-\(client)-\(i)"
                        let body = #"{"name":"\#(name)","cpus":1,"memory_bytes":4194304,"request_id":"\#(name)"}"#
                        guard let (status, _) = try? await post(base + "/v1/vms", body) else { return }
                        if status == 200 { acknowledged.names.withLock { $0.append(name) } } else { return }
                    }
                }
            }
            group.addTask {
                // Kill once 150 are acknowledged (or after 30 s, when the expectation below fails).
                for _ in 0..<6000 where acknowledged.names.withLock({ $0.count }) < 150 {
                    try await Task.sleep(for: .milliseconds(5))
                }
                first.kill(SIGKILL)
            }
            try await group.waitForAll()
        }
        _ = try await first.waitForExit()
        let acked = acknowledged.names.withLock { $0 }
        #expect(acked.count >= 150)

        let second = try DwcpProcess(serve, directory: dir, tag: "second")
        let port2 = try await second.waitForPort()
        let present = try await vmNames("http://127.0.0.1:\(port2)")
        let missing = acked.filter { !present.contains($0) }
        #expect(missing.isEmpty, "acknowledged but missing after the crash: \(missing.prefix(10))")
        second.kill(SIGTERM)
        #expect(try await second.waitForExit() == 0)

        // The views the node kept equal views rebuilt from its log.
        let kept = try ViewStore(path: data + "/views.sqlite").dump()
        let log = try LogStore(path: data + "/log")
        let rebuilt = try ViewStore(path: dir.file("rebuilt.sqlite"))
        var next: UInt64 = 1
        while next <= log.lastIndex {
            let batch = try log.entries(in: next...log.lastIndex, maxCount: 4096)
            try await rebuilt.apply(batch)
            next = batch.last!.index + 1
        }
        let rebuiltDump = try rebuilt.dump()
        #expect(rebuiltDump == kept, "views differ from a rebuild: \(firstDifference(kept, rebuiltDump))")
    }

    @Test("SIGHUP to a node without TLS is logged as nothing to reload, and the node goes on serving")
    func sighupWithoutTLS() async throws {
        let dir = TemporaryDirectory()
        let node = try DwcpProcess(Self.serve(dir.file("data")), directory: dir, tag: "node")
        let server = "127.0.0.1:\(try await node.waitForPort())"
        // (SIGHUP's default action used to end it at once.)
        node.kill(SIGHUP)
        #expect(try await waitUntil { node.stderr.contains("SIGHUP: nothing to reload") }, "\(node.stderr)")
        #expect(try await runCLI(["status", "--server", server], in: dir).0 == 0, "\(node.stderr)")
        node.kill(SIGTERM)
        #expect(try await node.waitForExit() == 0, "\(node.stderr)")
    }

    @Test("the CLI refuses bad input with one line on stderr and a non-zero status")
    func cliBadInput() async throws {
        let dir = TemporaryDirectory()
        let node = try DwcpProcess(Self.serve(dir.file("data")), directory: dir, tag: "node")
        let server = "127.0.0.1:\(try await node.waitForPort())"
        defer { node.kill(SIGTERM) }
        let cases: [([String], Int32, String)] = [
            (["vm", "create", "x", "--cpus", "abc", "--memory", "1GiB"], 64, "dwcp: "),
            (["vm", "create", "x", "--cpus", "1", "--memory", "1GB"], 64, "dwcp: invalid size '1GB'"),
            (["vm", "create", "X", "--cpus", "1", "--memory", "1GiB"], 64, "dwcp: invalid VM name 'X'"),
            (
                ["vm", "create", "x", "--cpus", "1", "--memory", "1GiB", "--label", "novalue"], 64,
                "invalid label 'novalue'"
            ),
            (["host", "add", "h", "--region", "eu", "--cpus", "4"], 64, "dwcp: "),
            (["vm", "frobnicate"], 64, "dwcp: unknown command 'frobnicate': dwcp vm takes create, list"),
            (["nosuch"], 64, "dwcp: unknown command 'nosuch': dwcp takes serve, dev"),
            (["watch", "--from-index", "0"], 64, "--from-index must be 1 to 9223372036854775807"),
            (["watch", "--from-index", "18446744073709551615"], 64, "--from-index must be 1 to"),
            (
                ["vm", "create", "x", "--cpus", "1", "--memory", "1GiB", "--check-index", "18446744073709551615"], 64,
                "invalid --check-index 18446744073709551615"
            ),
            (["sql", "DELETE FROM vms"], 1, "dwcp: refused: dwcp sql is read-only"),
            (["vm", "stop", "ghost"], 1, "dwcp: no VM named ghost"),
            (["host", "remove", "ghost"], 1, "dwcp: no host named ghost"),
            // (A single node waited 10 s for the index to commit, then blamed "half of the members".)
            (
                ["cluster", "verify", "--log-index", "99999"], 1,
                "dwcp: log index 99999 is past the region's commit index"
            ),
        ]
        for (arguments, expectedStatus, message) in cases {
            let (status, _, stderr) = try await runCLI(arguments + ["--server", server], in: dir)
            #expect(status == expectedStatus, "\(arguments): \(stderr)")
            #expect(stderr.hasPrefix(message) || stderr.contains(message), "\(arguments): \(stderr)")
            #expect(stderr.split(separator: "\n").count == 1, "\(arguments): \(stderr)")
        }
        for loops in ["0", "257", "two"] {
            let (status, _, stderr) = try await runCLI(
                ["dev", "--data-dir", dir.file("dev"), "--event-loops", loops], in: dir)
            #expect(status == 64, "--event-loops \(loops): \(stderr)")
            #expect(stderr.hasPrefix("dwcp: ") && stderr.contains("--event-loops"), "\(stderr)")
            #expect(stderr.split(separator: "\n").count == 1, "\(stderr)")
        }
        // A group without one of its commands: its help on stderr and a refusal, not help and 0.
        for group in [[], ["vm"]] {
            let (status, stdout, stderr) = try await runCLI(group, in: dir)
            #expect(status == 64 && stdout.isEmpty, "\(group): \(status) \(stdout)")
            #expect(stderr.contains("SUBCOMMANDS:") && stderr.contains(" needs a command: "), "\(group): \(stderr)")
        }
        let (helpStatus, help, _) = try await runCLI(["vm", "--help"], in: dir)
        #expect(helpStatus == 0 && help.contains("SUBCOMMANDS:"), "\(help)")
        // serve and dev share the node's flags, and refuse the same values.
        let serveCommand = ["serve", "--data-dir", dir.file("serve"), "--node-id", "n1", "--region", "eu"]
        let devCommand = ["dev", "--data-dir", dir.file("dev")]
        for (commands, flag, values) in [
            ([serveCommand], "--follower-apply-delay", ["60001", "soon"]),
            ([serveCommand], "--election-timeout", ["99", "60010", "305", "1x", "0.0905s"]),
            ([serveCommand, devCommand], "--history-retention", ["7", "5s", "1w", "-1d", "99999999d", ""]),
            ([serveCommand, devCommand], "--snapshot-every", ["0", "1000000001", "-5"]),
            ([serveCommand, devCommand], "--log-level", ["verbose", ""]),
        ] {
            for command in commands {
                for value in values {
                    let (status, _, stderr) = try await runCLI(command + [flag, value], in: dir)
                    #expect(status == 64, "\(command[0]) \(flag) \(value): \(stderr)")
                    #expect(stderr.hasPrefix("dwcp: ") && stderr.contains(flag), "\(stderr)")
                    #expect(!stderr.contains("Unknown option"), "\(command[0]) has no \(flag): \(stderr)")
                    #expect(stderr.split(separator: "\n").count == 1, "\(stderr)")
                }
            }
        }
        // Refusals that come from the node's own validation are usage errors too (status 64).
        let serve = ["serve", "--data-dir", dir.file("serve"), "--region", "eu"]
        for (arguments, message) in [
            (["--node-id", "N1"], "invalid node name 'N1'"),
            (["--node-id", "n1", "--region", "EU!"], "invalid region name"),
            (
                ["--node-id", "n1", "--listen", "127.0.0.1:1", "--peer", "n2@127.0.0.1:2", "--peer", "n2@127.0.0.1:3"],
                "--peer names n2 twice"
            ),
            (["--node-id", "n1", "--listen", "127.0.0.1:1", "--peer", "N2@127.0.0.1:2"], "invalid node name 'N2'"),
            (["--node-id", "n1", "--listen", "127.0.0.1:1", "--peer", "n2@127.0.0.1:0"], "invalid member address"),
            (["--node-id", "n1", "--vm-pool-memory", "3KiB"], "dwcp: "),
        ] {
            let (status, _, stderr) = try await runCLI(serve + arguments, in: dir)
            #expect(status == 64, "\(arguments): \(stderr)")
            #expect(stderr.hasPrefix("dwcp: ") && stderr.contains(message), "\(arguments): \(stderr)")
            #expect(stderr.split(separator: "\n").count == 1, "\(arguments): \(stderr)")
        }
        // Starts that cannot go on say why: the node's data directory is in use, its API address is taken.
        for (arguments, message) in [
            (
                ["--data-dir", dir.file("data"), "--node-id", "n1", "--api", "127.0.0.1:0"],
                "is in use by another dwcp (pid "
            ),
            (
                ["--data-dir", dir.file("taken"), "--node-id", "n1", "--api", server],
                "cannot listen on \(server) (--api): Address already in use"
            ),
            (
                // The replication port is taken before the API starts: nothing was served, and no
                // error of the API's own cancelled start follows the reason.
                [
                    "--data-dir", dir.file("taken-listen"), "--node-id", "n1", "--api", "127.0.0.1:0", "--listen",
                    server, "--peer", "n1@\(server)",
                ],
                "cannot listen on \(server) (--listen): Address already in use"
            ),
        ] {
            let (status, stdout, stderr) = try await runCLI(
                ["serve", "--region", "eu", "--no-host-agent"] + arguments, in: dir)
            #expect(status == 1, "\(arguments): \(stderr)")
            #expect(stderr.contains("dwcp: ") && stderr.contains(message), "\(arguments): \(stderr)")
            #expect(!stdout.contains("listening on") && !stderr.contains(" error "), "\(stdout)\(stderr)")
            // A port in use is found before the data directory is touched: a member's first start
            // refused for it used to write the region's membership from its --peer list first, and
            // the start after it, with the port free, was cut off as a member founded otherwise.
            if message.contains("Address already in use") {
                let data = arguments[arguments.firstIndex(of: "--data-dir")! + 1]
                #expect(!FileManager.default.fileExists(atPath: data), "\(data) was written: \(stderr)")
                #expect(stderr.contains("nothing was written to the data directory"), "\(stderr)")
            }
        }
        for (server, message) in [
            ("ftp://\(server)", "invalid address 'ftp://"),
            ("\(server)/v1", "invalid address '\(server)/v1': use HOST:PORT, http://HOST:PORT or https://HOST:PORT"),
            ("bad host:1", "invalid address"),
        ] {
            let (status, _, stderr) = try await runCLI(["status", "--server", server], in: dir)
            #expect(status == 64, "--server \(server): \(stderr)")
            #expect(stderr.hasPrefix("dwcp: ") && stderr.contains(message), "\(stderr)")
        }
        // HTTPS asked of a plain-HTTP node: told, in one line.
        let (tlsStatus, _, tlsStderr) = try await runCLI(["status", "--server", "https://\(server)"], in: dir)
        #expect(tlsStatus == 1)
        #expect(tlsStderr.hasPrefix("dwcp: TLS with the node at https://\(server) failed: it does not speak TLS"))
        #expect(tlsStderr.split(separator: "\n").count == 1, "\(tlsStderr)")
        for address in ["http://\(server)/", "\(server)/"] {
            let (urlStatus, _, urlStderr) = try await runCLI(["status", "--server", address], in: dir)
            #expect(urlStatus == 0, "--server \(address): \(urlStderr)")
        }
        let closed = try closedPort()
        let (status, _, stderr, statusTook) = try await runTimedCLI(
            ["status", "--server", "127.0.0.1:\(closed)"], in: dir)
        #expect(status == 1)
        #expect(stderr.hasPrefix("dwcp: cannot reach a node at 127.0.0.1:\(closed): connection refused"), "\(stderr)")
        #expect(stderr.split(separator: "\n").count == 1)
        // Told before the HTTP client's 5 s connect timeout (it retried a refused connection for
        // all of it); a query, which retries within its 2 s window, well before the 21 s it took
        // (5 s per attempt). The bounds sit just under those: a process on a loaded machine takes
        // seconds to start.
        #expect(statusTook < .seconds(4.9), "\(statusTook)")
        let (sqlStatus, _, sqlStderr, sqlTook) = try await runTimedCLI(
            ["sql", "SELECT 1", "--server", "127.0.0.1:\(closed)"], in: dir)
        #expect(sqlStatus == 1 && sqlStderr.contains("connection refused"), "\(sqlStderr)")
        #expect(sqlTook < .seconds(15), "\(sqlTook)")
    }

    @Test("a command whose reader goes away (dwcp sql … | head) ends as a Unix tool does, by SIGPIPE, without a trace")
    func readerGoneEndsQuietly() async throws {
        let dir = TemporaryDirectory()
        let node = try DwcpProcess(Self.serve(dir.file("data")), directory: dir, tag: "node")
        defer { node.kill(SIGKILL) }
        let server = "127.0.0.1:\(try await node.waitForPort())"
        // One value of 1 MB: the write of it waits on the pipe until head has its 100 bytes and
        // leaves, and then finds no reader. (It trapped in Foundation's FileHandle, with a stack trace.)
        let script = #"""
            "$0" sql "SELECT printf('%.*c', 1000000, 'x') AS x" --format csv --server "$1" 2> "$2" | head -c 100
            exit "${PIPESTATUS[0]}"
            """#
        let piped = try await runToEnd("/bin/bash", ["-c", script, DwcpProcess.binary, server, dir.file("sql-stderr")])
        #expect(piped.status == 128 + SIGPIPE, "\(piped.status)")
        #expect(piped.output == "x\r\n" + String(repeating: "x", count: 97), "\(piped.output.prefix(200))")
        let said = try String(contentsOfFile: dir.file("sql-stderr"), encoding: .utf8)
        #expect(said.isEmpty, "\(said)")
    }

    @Test("the CLI's happy path: add, create, query in every format, watch")
    func cliHappyPath() async throws {
        let dir = TemporaryDirectory()
        let node = try DwcpProcess(Self.serve(dir.file("data")), directory: dir, tag: "node")
        let server = ["--server", "127.0.0.1:\(try await node.waitForPort())"]
        defer { node.kill(SIGTERM) }
        var (status, out, err) = try await runCLI(
            ["host", "add", "h1", "--region", "eu", "--cpus", "8", "--memory", "16GiB"] + server, in: dir)
        #expect(status == 0, "\(err)")
        #expect(out == "added host h1 (region eu, 8 CPUs, 16GiB) at log index 1\n")
        (status, out, err) = try await runCLI(
            ["vm", "create", "web-1", "--cpus", "2", "--memory", "1.5GiB", "--label", "app=web"] + server, in: dir)
        #expect(out == "created VM web-1 at log index 2: scheduled on h1\n", "\(err)")
        (status, out, _) = try await runCLI(
            ["sql", "SELECT name, memory_bytes, labels FROM vms", "--format", "json"] + server, in: dir)
        #expect(out == #"[{"name":"web-1","memory_bytes":1610612736,"labels":"{\"app\":\"web\"}"}]"# + "\n")
        (status, out, _) = try await runCLI(
            ["sql", "SELECT name, cpus_used FROM hosts", "--format", "csv"] + server, in: dir)
        #expect(out == "name,cpus_used\r\nh1,2\r\n")
        (status, out, _) = try await runCLI(["vm", "list", "--host", "h1", "--json"] + server, in: dir)
        #expect(out.hasPrefix(#"[{"name":"web-1","region":"eu","host":"h1","#), "\(out)")
        (status, _, err) = try await runCLI(["sql", "SELECT 1", "--json", "--format", "csv"] + server, in: dir)
        #expect(status == 64 && err.contains("--json and --format csv"), "\(err)")
        (status, out, _) = try await runCLI(["sql", ".tables", "--format", "table"] + server, in: dir)
        #expect(out.contains("vm_events") && out.contains("(8 rows at log index "))
        // The lists: fixed queries, filtered; a filter's value is a literal, whatever it holds.
        let vmColumns = "name,region,host,cpus,memory_bytes,desired_state,actual_state,reason\r\n"
        (status, out, err) = try await runCLI(["vm", "list", "--format", "csv"] + server, in: dir)
        #expect(
            out == vmColumns
                + "web-1,eu,h1,2,1610612736,running,scheduled,placed on h1; waiting for its host agent\r\n",
            "\(err)")
        (status, out, _) = try await runCLI(
            ["vm", "list", "--host", "h1", "--state", "scheduled", "--limit", "1", "--format", "csv"] + server, in: dir)
        #expect(out.hasPrefix(vmColumns + "web-1,"))
        for filter in [["--state", "running"], ["--host", "h1' OR '1'='1"], ["--region", "us"]] {
            (status, out, err) = try await runCLI(["vm", "list", "--format", "csv"] + filter + server, in: dir)
            #expect(status == 0 && out == vmColumns, "\(filter): \(out)\(err)")
        }
        (status, out, _) = try await runCLI(["host", "list", "--format", "csv"] + server, in: dir)
        #expect(
            out == "name,region,state,cpus,cpus_used,memory_bytes,memory_used_bytes,vms,labels,reason\r\n"
                + "h1,eu,ready,8,2,17179869184,1610612736,1,{},\r\n")
        // A plan names the index to commit it at only when it places something.
        (status, out, err) = try await runCLI(
            ["plan", "vm", "create", "fits", "--cpus", "1", "--memory", "1GiB"] + server, in: dir)
        #expect(out.contains("VM fits would go to h1") && out.contains("--check-index "), "\(out)\(err)")
        (status, out, err) = try await runCLI(
            ["plan", "vm", "create", "huge", "--cpus", "64", "--memory", "1TiB"] + server, in: dir)
        #expect(out.contains("VM huge would be unschedulable") && !out.contains("--check-index"), "\(out)\(err)")
        (status, _, err) = try await runCLI(["vm", "list", "--state", "lost"] + server, in: dir)
        #expect(status == 64)
        #expect(
            err.contains(
                "one of the following: pending, unschedulable, scheduled, starting, running, stopped, crashed"),
            "\(err)")
        (status, out, _) = try await runCLI(["watch", "--from-index", "1", "--limit", "3"] + server, in: dir)
        #expect(out.split(separator: "\n").count == 3)
        #expect(out.hasPrefix(#"{"log_index":1,"term":1,"kind":"host.added""#))
        (status, out, _) = try await runCLI(["status"] + server, in: dir)
        #expect(out.contains("applied index   3"))
        #expect(out.contains("role            single node\n"), "\(out)")
        #expect(
            out.contains("version         \(Node.version)") && out.contains("views schema    \(Schema.version)"),
            "\(out)")
        #expect(out.contains("api TLS         plain") && out.contains("replication TLS none"), "\(out)")
        // A request id travels whole in a URL's query, whatever it holds.
        (status, out, err) = try await runCLI(
            ["vm", "delete", "web-1", "--request-id", "retry 1&x=#2+"] + server, in: dir)
        #expect(status == 0, "\(err)")
        (status, out, _) = try await runCLI(
            ["sql", "SELECT request_id FROM intents WHERE kind = 'vm.delete'", "--format", "csv"] + server, in: dir)
        #expect(out == "request_id\r\nretry 1&x=#2+\r\n", "\(out)")
        // A host added without --region goes to the node's.
        (status, out, err) = try await runCLI(
            ["host", "add", "h2", "--cpus", "4", "--memory", "8GiB", "--request-id", "r2"] + server, in: dir)
        #expect(status == 0, "\(err)")
        #expect(out == "added host h2 (region eu, 4 CPUs, 8GiB) at log index 5\n", "\(out)")
        // A retry of a request already applied says so; the same id with other flags is refused.
        (status, out, err) = try await runCLI(
            ["host", "add", "h2", "--cpus", "4", "--memory", "8GiB", "--request-id", "r2"] + server, in: dir)
        #expect(
            out == "added host h2 (region eu, 4 CPUs, 8GiB) at log index 5 (a retry of a request already applied)\n",
            "\(out)\(err)")
        (status, out, err) = try await runCLI(
            ["host", "add", "h2", "--cpus", "8", "--memory", "16GiB", "--request-id", "r2"] + server, in: dir)
        #expect(status == 1 && err.contains("request id r2 was used at log index 5 for host.add h2 with other fields"))
        // An integer that does not fit a double comes back whole.
        (status, out, _) = try await runCLI(
            ["sql", "SELECT 9007199254740993 AS n", "--format", "csv"] + server, in: dir)
        #expect(out == "n\r\n9007199254740993\r\n", "\(out)")
        // A watch that follows commits fails when the node stops under it, and says where to go on.
        let watch = try DwcpProcess(["watch", "--from-index", "1"] + server, directory: dir, tag: "watch")
        _ = try await eventually(.seconds(30)) { watch.stdout.split(separator: "\n").count >= 5 }
        #expect(watch.stdout.split(separator: "\n").count == 5, "\(watch.stdout)\(watch.stderr)")
        node.kill(SIGTERM)
        #expect(try await node.waitForExit() == 0)
        #expect(try await watch.waitForExit() == 1)
        #expect(
            watch.stderr == "dwcp: the node is shutting down; to go on: dwcp watch --from-index 6\n", "\(watch.stderr)")
    }

    @Test(
        "dwcp dev runs a counter VM: it reaches running in SQL and its console shows heartbeats",
        .needsKVM)
    func devRunsCounter() async throws {
        let dir = TemporaryDirectory()
        let node = try DwcpProcess(
            ["dev", "--data-dir", dir.file("data"), "--api", "127.0.0.1:0", "--log-level", "warning"], directory: dir)
        let server = ["--server", "127.0.0.1:\(try await node.waitForPort())"]
        defer { node.kill(SIGKILL) }
        let (status, out, err) = try await runCLI(
            [
                "vm", "create", "tick", "--cpus", "1", "--memory", "256MiB", "--image", "builtin:counter",
                "--label", "guest.interval_ms=20",
            ] + server, in: dir)
        #expect(status == 0, "\(err)")
        #expect(out.contains("created VM tick"))
        var state = ""
        for _ in 0..<250 {
            (_, state, _) = try await runCLI(
                ["sql", "SELECT actual_state FROM vms WHERE name = 'tick'", "--format", "csv"] + server, in: dir)
            if state.contains("running") { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(state.contains("running"))
        try await Task.sleep(for: .milliseconds(200))
        let (consoleStatus, console, _) = try await runCLI(["vm", "console", "tick"] + server, in: dir)
        #expect(consoleStatus == 0)
        #expect(console.contains("heartbeat 1\n") && console.contains("heartbeat 3\n"), "console: \(console)")
        // A follow prints new heartbeats as they come; the node's stop (not the VM's) breaks it
        // off, and the CLI says so rather than ending as if the VM had stopped.
        let follow = try DwcpProcess(["vm", "console", "tick", "--follow"] + server, directory: dir, tag: "follow")
        let printed = { follow.stdout.components(separatedBy: "heartbeat ").count - 1 }
        let before = console.components(separatedBy: "heartbeat ").count - 1
        #expect(try await eventually(.seconds(20)) { printed() > before + 2 }, "\(follow.stdout)\(follow.stderr)")
        node.kill(SIGTERM)
        #expect(try await node.waitForExit() == 0)
        #expect(try await follow.waitForExit() == 1)
        #expect(
            follow.stderr.hasPrefix("dwcp: the stream from 127.0.0.1:") && follow.stderr.contains("broke off")
                && follow.stderr.contains("the node stopped"), "\(follow.stderr)")
    }
}
