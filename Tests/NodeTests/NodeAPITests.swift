import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Query
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct NodeAPITests {
    /// Runs a node and its API on a free port for the duration of `body`.
    func withAPI(
        configure: (inout NodeConfiguration) -> Void = { _ in }, logger: Logger? = nil,
        _ body: @Sendable (Node, String) async throws -> Void
    ) async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir, configure: configure, logger: logger) { node in
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let app = try NodeAPI.application(node: node, logger: .init(label: "api")) { continuation.yield($0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.runService() }
                defer { group.cancelAll() }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else {
                    Issue.record("the API never reported its port")
                    return
                }
                try await body(node, "http://127.0.0.1:\(port)")
            }
        }
    }

    func call(_ method: NIOHTTP1.HTTPMethod, _ url: String, _ body: String? = nil) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 24)))
    }

    @Test("intents, SQL, status and watch over HTTP")
    func endToEnd() async throws {
        try await withAPI { node, base in
            var (status, body) = try await call(
                .POST, base + "/v1/hosts", #"{"name":"h1","cpus":4,"memory_bytes":8589934592,"labels":{"rack":"a"}}"#)
            #expect(status == 200)
            #expect(body.contains(#""outcome":"applied""#))
            // The row's JSON columns as JSON, as the request gave them (they read as strings of JSON).
            #expect(body.contains(#""labels":{"rack":"a"}"#), "\(body)")
            (status, body) = try await call(
                .POST, base + "/v1/vms", #"{"name":"web-1","cpus":1,"memory_bytes":536870912,"request_id":"r1"}"#)
            #expect(status == 200)
            #expect(body.contains(#""host":"h1""#) && body.contains(#""actual_state":"scheduled""#))
            #expect(body.contains(#""required_labels":{}"#) && body.contains(#""explanation":{"#), "\(body)")
            (status, body) = try await call(.POST, base + "/v1/vms/web-1/stop", "")
            #expect(status == 200 && body.contains(#""desired_state":"stopped""#))
            // A name in the path may come percent-encoded (h%31 is h1).
            (status, body) = try await call(.PUT, base + "/v1/hosts/h%31/labels", #"{"labels":{"rack":"b"}}"#)
            #expect(status == 200 && body.contains(#""name":"h1""#) && body.contains(#""rack":"b""#), "\(body)")
            (status, body) = try await call(.POST, base + "/v1/sql", #"{"query":"SELECT name, host FROM vms"}"#)
            #expect(status == 200)
            #expect(body.hasPrefix(#"{"columns":["name","host"],"rows":[["web-1","h1"]],"applied_index":"#))
            // An answer large enough to be turned into JSON on the thread pool reads the same way.
            (status, body) = try await call(
                .POST, base + "/v1/sql",
                #"{"query":"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT x FROM c"}"#
            )
            #expect(status == 200)
            #expect(
                body.hasPrefix(#"{"columns":["x"],"rows":[[1],[2],"#)
                    && body.contains(#"[2999],[3000]],"applied_index":"#))
            (status, body) = try await call(.GET, base + "/v1/status")
            #expect(body.contains(#""node_id":"n1""#) && body.contains(#""region":"eu""#))
            (status, body) = try await call(.GET, base + "/v1/watch?from_index=1&limit=3")
            let lines = body.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines[0].hasPrefix(#"{"log_index":1,"term":1,"kind":"host.added""#))
            #expect(lines[1].contains(#""kind":"vm.created""#) && lines[1].contains(#""request_id":"r1""#))
            #expect(lines[2].contains(#""kind":"vm.placed""#))
            // The stream's connection closes as it ends, and says so: a client asks its next
            // request on another (one asked on it once failed with "I/O on closed channel").
            let stream = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: base + "/v1/watch?from_index=1&limit=1"), timeout: .seconds(30))
            #expect(stream.headers["connection"] == ["close"])
            _ = try await stream.body.collect(upTo: 1 << 20)
            // An index no log reaches is refused, not waited for.
            for past in ["18446744073709551615", "99999999999999999999"] {
                (status, body) = try await call(.GET, base + "/v1/watch?from_index=\(past)")
                #expect(status == 400 && body.contains("a log index is at most"), "\(body)")
            }
        }
    }

    @Test("a request id is taken from the query or the body on every intent, so a retry applies once either way")
    func requestIDInEitherPlace() async throws {
        try await withAPI { node, base in
            var (status, body) = try await call(
                .POST, base + "/v1/hosts?request_id=h", #"{"name":"h1","cpus":4,"memory_bytes":8589934592}"#)
            #expect(status == 200 && body.contains(#""outcome":"applied""#), "\(body)")
            (status, body) = try await call(
                .POST, base + "/v1/hosts", #"{"name":"h1","cpus":4,"memory_bytes":8589934592,"request_id":"h"}"#)
            #expect(status == 200 && body.contains(#""outcome":"duplicate""#), "\(body)")
            (status, body) = try await call(
                .POST, base + "/v1/vms", #"{"name":"a","cpus":1,"memory_bytes":536870912,"request_id":"c"}"#)
            #expect(status == 200)
            // Where the docs put it, then in the other place: one intent, answered as a retry.
            for (path, first, second) in [
                ("/v1/vms/a/stop", ("?request_id=s", ""), ("", #"{"request_id":"s"}"#)),
                ("/v1/vms/a/start", ("", #"{"request_id":"t"}"#), ("?request_id=t", "")),
            ] {
                (status, body) = try await call(.POST, base + path + first.0, first.1)
                #expect(status == 200 && body.contains(#""outcome":"applied""#), "\(path): \(body)")
                (status, body) = try await call(.POST, base + path + second.0, second.1)
                #expect(status == 200 && body.contains(#""outcome":"duplicate""#), "\(path): \(body)")
            }
            (status, body) = try await call(.DELETE, base + "/v1/vms/a", #"{"request_id":"d"}"#)
            #expect(status == 200 && body.contains(#""outcome":"applied""#), "\(body)")
            (status, body) = try await call(.DELETE, base + "/v1/vms/a?request_id=d")
            #expect(status == 200 && body.contains(#""outcome":"duplicate""#), "\(body)")
            // Two that disagree are refused before anything is proposed.
            let before = node.log.lastIndex
            (status, body) = try await call(
                .PUT, base + "/v1/hosts/h1/labels?request_id=x", #"{"labels":{},"request_id":"y"}"#)
            #expect(
                status == 400 && body.contains("request_id is given in the query (x) and in the body (y)"), "\(body)")
            #expect(node.log.lastIndex == before)
        }
    }

    @Test("metrics count intents by outcome and time the log's writes and the views' applies")
    func metrics() async throws {
        try await withAPI { node, base in
            _ = try await call(.POST, base + "/v1/hosts", #"{"name":"h1","cpus":4,"memory_bytes":8589934592}"#)
            _ = try await call(.POST, base + "/v1/hosts", #"{"name":"h1","cpus":4,"memory_bytes":8589934592}"#)
            _ = try await call(.PUT, base + "/v1/hosts/h1/labels", #"{"labels":{"rack":"b"}}"#)
            _ = try await call(.PUT, base + "/v1/hosts/nope/labels", #"{"labels":{"rack":"b"}}"#)
            let (status, body) = try await call(.GET, base + "/metrics")
            #expect(status == 200)
            let lines = Set(body.split(separator: "\n").map(String.init))
            #expect(lines.contains(#"dwcp_intents_total{outcome="applied"} 2"#))
            #expect(lines.contains(#"dwcp_intents_total{outcome="conflict"} 1"#))
            #expect(lines.contains(#"dwcp_intents_total{outcome="not_found"} 1"#))
            // Every request is timed, refused or not.
            #expect(lines.contains("dwcp_intent_duration_seconds_count 4"))
            func value(_ name: String) -> Double? { metric(body, name) }
            #expect(value("dwcp_log_last_index") == Double(node.log.lastIndex))
            #expect(value("dwcp_views_applied_index") == Double(node.applied.value))
            #expect(value("dwcp_raft_is_leader") == 1)
            // A single node always has its leader and parks nothing; these show the gauges are
            // served (the region's process tests see them move).
            #expect(value("dwcp_raft_has_leader") == 1)
            #expect(value("dwcp_raft_proposals_parked") == 0)
            // Every entry written so far went through a timed, durable write and a timed apply.
            #expect(value("dwcp_log_entries_written_total") == Double(node.log.lastIndex))
            #expect((value("dwcp_log_write_duration_seconds_count") ?? 0) >= 1)
            #expect(value("dwcp_views_entries_applied_total") == Double(node.applied.value))
            #expect(lines.contains { $0.hasPrefix(#"dwcp_log_write_duration_seconds_bucket{le="0.0001"}"#) })
        }
    }

    @Test("a console asked of a VM this node does not host says whether any node keeps it, and which")
    func consoleElsewhere() async throws {
        try await withAPI { node, base in
            // h1 added by hand (no agent runs its VMs); h2 as a host agent of node n7 registers.
            _ = try await node.submit(.addHost(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30)))
            _ = try await node.submit(
                .addHost(HostAdded(name: "h2", region: "eu", cpus: 2, memoryBytes: 8 << 30, labels: ["at": "2"])),
                requestID: "host-agent-n7-h2")
            var first = VMCreated(name: "by-hand", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")
            first.requiredLabels = [:]
            _ = try await node.submit(.createVM(first))
            var second = VMCreated(name: "by-agent", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")
            second.requiredLabels = ["at": "2"]
            _ = try await node.submit(.createVM(second))
            let hosts = try await node.sql("SELECT name, host FROM vms ORDER BY name", consistency: .local).rows
            #expect(hosts == [[.string("by-agent"), .string("h2")], [.string("by-hand"), .string("h1")]], "\(hosts)")
            let (status, text) = try await call(.GET, base + "/v1/vms/by-hand/console")
            #expect(status == 409)
            #expect(
                text.contains(
                    "VM by-hand (scheduled) is placed on host h1, which no node's host agent registered (it was added with dwcp host add)"
                ), "\(text)")
            let (agentStatus, agentText) = try await call(.GET, base + "/v1/vms/by-agent/console")
            #expect(agentStatus == 409)
            #expect(
                agentText.contains(
                    "is kept by the node that runs that host's agent (it registered as host-agent-n7-h2)"),
                "\(agentText)")
            // Once the history that said who added the hosts is compacted, neither is called
            // hand-added: the answer says it cannot tell.
            try await node.views.pool.write { db in try db.execute(sql: "DELETE FROM intents WHERE kind = 'host.add'") }
            for vm in ["by-hand", "by-agent"] {
                let (_, text) = try await call(.GET, base + "/v1/vms/\(vm)/console")
                #expect(text.contains("(the history that said who added the host is compacted)"), "\(text)")
            }
        }
    }

    @Test("an answer of status 500 (damaged views a query met) is logged by the node too, once a minute")
    func serverErrorsAreLogged() async throws {
        let said = RecordedLog()
        try await withAPI(logger: said.logger) { node, base in
            _ = try await node.submit(.addHost(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30)))
            // Every page in the file, none left in the WAL for a reader to take instead.
            try await node.views.pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
            try overwriteRootPage(of: "hosts", inDatabaseAt: node.configuration.viewsPath)
            for _ in 0..<2 {
                let (status, text) = try await call(.POST, base + "/v1/sql", #"{"query":"SELECT * FROM hosts"}"#)
                #expect(status == 500 && text.contains("views.sqlite is damaged"), "\(text)")
            }
            // The node's status and metrics say so too, for whoever watches them.
            let (_, status) = try await call(.GET, base + "/v1/status")
            #expect(status.contains(#""views_damaged":""#), "\(status)")
            #expect(metric(node.metrics.render(node: node), "dwcp_views_damaged") == 1)
            let lines = said.lines.filter { $0.contains("a request failed on this node: ") }
            #expect(lines.count == 1, "\(said.lines)")
            #expect(lines.first?.contains("views.sqlite is damaged") == true, "\(lines)")
        }
    }

    @Test("a statement past its deadline is answered 408, one stopped as busy 429, a refused one 400")
    func queryErrorStatuses() {
        #expect(NodeAPI.failure(for: QueryError(.timeout, "stopped")).status == .requestTimeout)
        #expect(NodeAPI.failure(for: QueryError(.busy, "stopped")).status == .tooManyRequests)
        #expect(NodeAPI.failure(for: QueryError(.syntax, "refused")).status == .badRequest)
    }

    @Test("a watch follows commits made after it started")
    func watchFollows() async throws {
        try await withAPI { node, base in
            let from = node.log.lastIndex + 1
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask { try await call(.GET, base + "/v1/watch?from_index=\(from)&limit=2").1 }
                try await Task.sleep(for: .milliseconds(200))
                _ = try await node.submit(
                    .addHost(HostAdded(name: "late", region: "eu", cpus: 1, memoryBytes: 1 << 30)))
                _ = try await node.submit(.removeHost(name: "late"))
                let body = try await group.next()!
                #expect(body.contains("host.added") && body.contains("host.removed"))
            }
        }
    }

    @Test(
        "a connection whose client asked to close after a body the API refused unread (over 1 MiB) is closed once idle, not held until the node stops"
    )
    func refusedBodyConnectionIsClosed() async throws {
        // Idle for 6 s: the close, with the body unread, is a reset, which takes the 400 with it
        // if this test has not read it yet (under a full run it took a second, and once, with
        // 3 s, longer than that).
        try await withAPI(configure: { $0.apiIdleTimeout = .seconds(6) }) { _, base in
            let port = try #require(Int(base.split(separator: ":").last!))
            let fd = try connectLoopback(port)
            defer { close(fd) }
            // The node's end of the connection, as the kernel lists it.
            let client = localPort(of: fd)
            #expect(try await waitUntil { loopbackSocketListed(localPort: port, remotePort: client) })
            var limit = timeval(tv_sec: 0, tv_usec: 300_000)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let head =
                "POST /v1/sql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20971520\r\nConnection: close\r\n\r\n"
            _ = Array(head.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            // The body until the node stops reading it (the send times out), or 8 MiB.
            let chunk = [UInt8](repeating: 0x20, count: 64 << 10)
            var sent = 0
            while sent < 8 << 20 {
                let count = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                sent += count
            }
            var wait = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let text = String(decoding: readToEnd(fd).bytes, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 400") && text.contains("larger than 1MiB"), "\(text)")
            // The node's end of the connection goes (closed with the body unread: a reset).
            #expect(
                try await waitUntil(timeout: .seconds(15)) {
                    !loopbackSocketListed(localPort: port, remotePort: client)
                },
                "the node still holds the connection")
        }
    }

    @Test("a watch whose client goes away ends, though nothing was written to it")
    func abandonedWatchEnds() async throws {
        try await withAPI { node, base in
            let port = try #require(Int(base.split(separator: ":").last!))
            let before = node.consensus.committed.waiterCount
            // A watch far ahead of the log: it writes nothing while it waits.
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            let ask = "GET /v1/watch?from_index=1000000 HTTP/1.1\r\nHost: localhost\r\n\r\n"
            try await channel.writeAndFlush(ByteBuffer(string: ask)).get()
            #expect(
                try await waitUntil { node.consensus.committed.waiterCount == before + 1 }, "the watch never waited")
            try await channel.close()
            #expect(
                try await waitUntil { node.consensus.committed.waiterCount == before },
                "the watch went on waiting after its client went away")
        }
    }

    @Test("bad requests get a clear JSON error and a fitting status")
    func badRequests() async throws {
        try await withAPI { node, base in
            let before = node.log.lastIndex
            let cases: [(NIOHTTP1.HTTPMethod, String, String?, Int, String)] = [
                (.POST, "/v1/vms", "{not json", 400, "not valid JSON"),
                (.POST, "/v1/vms", #"{"name":"x","cpus":1}"#, 400, "lacks the field 'memory_bytes'"),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":"one","memory_bytes":1}"#, 400,
                    "field 'cpus' has the wrong type"
                ),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":1048576,"desired_state":"paused"}"#, 400,
                    "invalid desired_state"
                ),
                (.POST, "/v1/vms", nil, 400, "needs a JSON body"),
                // Foundation's decoder would take one of the two values without a word.
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":16,"memory_bytes":1048576,"cpus":2}"#, 400,
                    "names the field 'cpus' twice"
                ),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":1048576,"labels":{"zone":"a","zone":"b"}}"#,
                    400, "names the field 'labels.zone' twice"
                ),
                (.GET, "/v1/views/digest?log_index=0", nil, 400, "invalid log_index"),
                (.GET, "/v1/views/digest", nil, 400, "lacks log_index"),
                (.GET, "/v1/views/digest?log_index=1&log_index=2", nil, 400, "log_index is given 2 times"),
                (.DELETE, "/v1/hosts/h9?request_id=a&request_id=b", nil, 400, "request_id is given 2 times"),
                (.GET, "/v1/watch?limit=1&limit=2", nil, 400, "limit is given 2 times"),
                // A name is quoted cut short, with its size.
                (.DELETE, "/v1/hosts/" + String(repeating: "X", count: 5000), nil, 400, "XXX… (5000 bytes)': use 1-63"),
                (.GET, "/v1/views/digest?log_index=+1", nil, 400, "invalid log_index"),
                (.POST, "/v1/vms", "[1]", 400, "the request body must be a JSON object"),
                (.GET, "/v1/views/digest?log_index=1&timeout_ms=20000", nil, 400, "invalid timeout_ms"),
                (.POST, "/v1/vms", #"{"name":"x","cpus":1e30,"memory_bytes":1}"#, 400, "a number out of range"),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":1048576,"check_index":-1}"#, 400,
                    "a number out of range"
                ),
                (.DELETE, "/v1/vms/ghost", nil, 404, "no VM named ghost"),
                // A query parameter the route does not read is refused, not dropped: a misspelt
                // request id would let a retry apply twice.
                (
                    .PUT, "/v1/hosts/h1/labels?request-id=q2", #"{"labels":{}}"#, 400,
                    "unknown query parameter 'request-id' for PUT /v1/hosts/:name/labels: it takes request_id (did you mean request_id?)"
                ),
                (.POST, "/v1/sql?consistency=local", #"{"query":"SELECT 1"}"#, 400, "for POST /v1/sql: it takes none"),
                (.GET, "/v1/watch?from=3", nil, 400, "it takes from_index, limit"),
                // An empty segment is not skipped: this would have deleted a host named labels.
                (.DELETE, "/v1/hosts//labels", nil, 400, "the path /v1/hosts//labels has an empty segment"),
                // (Which no route matches, collapsed as the router reads it, with this method.)
                (.PUT, "/v1/hosts//labels", "{}", 400, "the path /v1/hosts//labels has an empty segment"),
                (.GET, "/v1/vms/ABC/console", nil, 400, "invalid VM name 'ABC'"),
                // A name in the path is quoted as the client meant it, percent-decoded.
                (.DELETE, "/v1/hosts/Bad%20Name", nil, 400, "invalid host name 'Bad Name'"),
                (.POST, "/v1/sql", #"{"query":"DELETE FROM vms"}"#, 400, "read-only"),
                (.POST, "/v1/sql", #"{"query":"SELEC nonsense"}"#, 400, "syntax error"),
                (.POST, "/v1/sql", #"{"query":"SELECT 1","max_rows":0}"#, 400, "invalid max_rows 0"),
                (.POST, "/v1/sql", #"{"query":"SELECT 1","max_rows":-1}"#, 400, "invalid max_rows -1"),
                (
                    // Past what SQLite keeps of an index (a 64-bit integer): refused as the body is
                    // read, never committed (every member would have to apply it).
                    .POST, "/v1/vms",
                    #"{"name":"x","cpus":1,"memory_bytes":268435456,"check_index":9223372036854775808}"#, 400,
                    "field 'check_index' holds a number out of range for it"
                ),
                (
                    .POST, "/v1/vms",
                    #"{"name":"x","cpus":1,"memory_bytes":268435456,"check_index":18446744073709551615}"#, 400,
                    "field 'check_index' holds a number out of range for it"
                ),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1.5,"memory_bytes":1}"#, 400,
                    "field 'cpus' holds a number it cannot take"
                ),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":-9223372036854775809}"#, 400,
                    "field 'memory_bytes' holds a number out of range"
                ),
                (.POST, "/v1/vms", "null", 400, "the request body must be a JSON object"),
                // A field the request does not take is named (ignored, the views' name for a
                // constraint left the VM unconstrained), and one the views call so points to the
                // request's own.
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":1048576,"required_labels":{"d":"n"}}"#,
                    400,
                    "does not take: 'required_labels' ('required_labels' is the views' name; the request's field is 'require')"
                ),
                (
                    .POST, "/v1/plan/vms", #"{"name":"x","cpus":1,"memory_bytes":1048576,"memory":1}"#, 400,
                    "does not take: 'memory'; it takes name, region, cpus"
                ),
                (.PUT, "/v1/hosts/h1/labels", #"{"labels":{},"label":{"a":"b"}}"#, 400, "does not take: 'label'"),
                (.POST, "/v1/cluster/leader", #"{"to":"n2"}"#, 400, "does not take: 'to'; it takes id"),
                (
                    .POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":1,"labels":{"a":1}}"#, 400,
                    "field 'labels.a' has the wrong type"
                ),
                (.POST, "/v1/vms", #"{"name":null,"cpus":1,"memory_bytes":1}"#, 400, "field 'name' is null"),
                (.POST, "/v1/vms", #"{"name":"x","cpus":1,"memory_bytes":1} x"#, 400, "not valid JSON"),
                (.GET, "/v1/watch?from_index=0", nil, 400, "invalid from_index"),
                (.GET, "/v1/watch?from_index=+19", nil, 400, "invalid from_index '+19'"),
                (.GET, "/v1/watch?from_index=1&from_index=2", nil, 400, "from_index is given 2 times"),
                (.GET, "/v1/watch?limit=x", nil, 400, "invalid limit"),
                (
                    .GET, "/v1/vms/web-9/console?follow=yes", nil, 400,
                    "invalid follow 'yes': give 1 or true, 0 or false"
                ),
                // No route: the API's JSON error, not an empty 404.
                (.GET, "/v1/nothing-here", nil, 404, "no such route: GET /v1/nothing-here"),
                (.GET, "/v1/vms/x/nothing", nil, 404, "no such route: GET /v1/vms/x/nothing"),
                // A known path with another method: 405, naming the methods it takes.
                (.PUT, "/v1/status", "{}", 405, "PUT is not served at /v1/status: it takes GET, HEAD"),
                (.GET, "/v1/hosts", nil, 405, "GET is not served at /v1/hosts: it takes POST"),
                (.DELETE, "/v1/vms/web-9/console", nil, 405, "it takes GET, HEAD"),
                (.PUT, "/v1/vms/web-9", "{}", 405, "it takes DELETE"),
            ]
            for (method, path, body, expectedStatus, message) in cases {
                let (status, text) = try await call(method, base + path, body)
                #expect(status == expectedStatus, "\(path): \(text)")
                #expect(text.contains(#"{"error":{"code":"#) && text.contains(message), "\(path): \(text)")
            }
            // A path that is not valid percent-encoding (sent as is: the HTTP client would escape it).
            let port = try #require(Int(base.split(separator: ":").last!))
            let request = "DELETE /v1/hosts/h%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let answer = String(decoding: try exchangeRaw(Array(request.utf8), port: port).answer, as: UTF8.self)
            #expect(
                answer.hasPrefix("HTTP/1.1 400")
                    && answer.contains("the name in the path (h%zz) is not valid percent-encoding"), "\(answer)")
            // So is a query value that is not (it was taken for a request id of three characters).
            let query = "DELETE /v1/hosts/h1?request_id=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let refused = String(decoding: try exchangeRaw(Array(query.utf8), port: port).answer, as: UTF8.self)
            #expect(
                refused.hasPrefix("HTTP/1.1 400")
                    && refused.contains("the query's request_id=%zz is not valid percent-encoding"), "\(refused)")
            // A trailing '/' names nothing and is let be.
            #expect(try await call(.GET, base + "/v1/status/").0 == 200)
            #expect(node.log.lastIndex == before)
            // An intent whose body cannot be read counts among the invalid ones, as one that fails
            // validation does (it was left out).
            let invalid = #"dwcp_intents_total{outcome="invalid"}"#
            let counted = metric(node.metrics.render(node: node), invalid) ?? 0
            _ = try await call(.POST, base + "/v1/vms", "null")
            _ = try await call(.PUT, base + "/v1/hosts/h1/labels", #"{"labels":{"a":1}}"#)
            _ = try await call(.DELETE, base + "/v1/vms/web-1?request_id=a&request_id=b", nil)
            #expect(metric(node.metrics.render(node: node), invalid) == counted + 3)
        }
    }

    @Test("a wrong method names those the path takes in Allow; HEAD answers a GET's headers without its body")
    func methodsOfAPath() async throws {
        try await withAPI { _, base in
            var request = HTTPClientRequest(url: base + "/v1/vms/web-1/stop")
            request.method = .GET
            var response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers["Allow"] == ["POST"])
            #expect(String(buffer: try await response.body.collect(upTo: 1 << 20)).contains("method_not_allowed"))

            request = HTTPClientRequest(url: base + "/v1/status")
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let length = response.headers["Content-Length"].first.flatMap { Int($0) }
            #expect(response.status == .ok && (length ?? 0) > 0)
            request.method = .HEAD
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(try await response.body.collect(upTo: 1 << 20).readableBytes == 0)

            // A stream's GET says the connection closes when it ends; its HEAD has no stream, and
            // the connection stays for the next request.
            request = HTTPClientRequest(url: base + "/v1/watch?from_index=1&limit=1")
            request.method = .HEAD
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers["Connection"].allSatisfy { $0.lowercased() != "close" }, "\(response.headers)")
            #expect(response.headers["Content-Type"] == ["application/x-ndjson"])
        }
    }

    @Test("a watch from a compacted index says where to re-list from")
    func compacted() async throws {
        try await withAPI { node, base in
            for name in ["a", "b", "c"] {
                _ = try await node.submit(.addHost(HostAdded(name: name, region: "eu", cpus: 1, memoryBytes: 1 << 30)))
            }
            try await node.log.compact(through: 2, term: 1)
            let (status, body) = try await call(.GET, base + "/v1/watch?from_index=1")
            #expect(status == 410)
            #expect(body.contains("compacted: entries before 3 are gone; re-list from index 3"))
        }
    }
}
