import AsyncHTTPClient
import Foundation
import NIOSSL
import Replication
import TestSupport
import Testing

@testable import Store

extension RegionProcessTests {
    @Test(
        "mutual TLS: a region writes through every member; a plain-text frame changes nothing; a member restarted with another authority's certificate is cut off until it has the region's again"
    )
    func mutualTLS() async throws {
        let dir = TemporaryDirectory()
        let members = Dictionary(uniqueKeysWithValues: Region.ids.map { ($0, "127.0.0.1") })
        try await makePeerCertificates(in: dir.file("certs"), members)
        try await makePeerCertificates(in: dir.file("stranger"), members)
        // (An election timeout of 2 s: below, the term must not move for a second but for the
        // frame under test, and 300 ms calls spurious elections on a loaded machine.)
        let region = try Region(dir, extraArguments: ["--election-timeout", "2000"], certificates: dir.file("certs"))
        // A member given another member's certificate does not start: peers would refuse its frames.
        var misnamed = region.arguments("n1")
        misnamed[misnamed.firstIndex(of: "--peer-cert-file")! + 1] = dir.file("certs/n2.pem")
        misnamed[misnamed.firstIndex(of: "--peer-key-file")! + 1] = dir.file("certs/n2.key")
        let refused = try DwcpProcess(misnamed, directory: dir, tag: "n1-misnamed")
        #expect(try await refused.waitForExit() == 64)
        #expect(refused.stderr.contains("speaks for n2 (its Common Name), not for this node, n1"), "\(refused.stderr)")

        let leader = try await region.startAll()
        try await region.addRoomyHost(via: leader)
        for id in Region.ids { #expect(region.stderr(id).contains("as \(id) (mutual TLS)"), "\(region.stderr(id))") }

        /// Creates VMs `vm-PREFIX-0...` through the members in turn (followers forward to the
        /// leader over the replication port); 503s are asked again with the same request id.
        func create(_ prefix: Int, count: Int, through ids: [String]) async throws -> [String] {
            var names: [String] = []
            for i in 0..<count {
                let name = "vm-\(prefix)-\(i)"
                let body = #"{"name":"\#(name)","cpus":1,"memory_bytes":4194304,"request_id":"\#(name)"}"#
                var status = 0
                for _ in 0..<20 where status != 200 {
                    status = (try? await post(region.base(ids[i % ids.count])! + "/v1/vms", body))?.0 ?? 0
                    if status != 200 { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(status == 200, "\(name)")
                names.append(name)
            }
            return names
        }
        var created = try await create(1, count: 30, through: Region.ids)
        _ = try await region.waitForCatchUp(to: leader)

        // In plain TCP, this frame makes a follower call an election at once (its leader's own
        // hand-over message); over TLS it never reaches Raft.
        let follower = Region.ids.first { $0 != leader }!
        let term = try #require(await region.cluster(leader)["term"])
        let timeoutNow = RaftFrame(
            group: "region",
            message: RaftMessage(from: leader, to: follower, term: UInt64(term) ?? 0, body: .timeoutNow))
        func handshakesFailed(_ id: String) async throws -> Double {
            metric(try await get(region.base(id)! + "/metrics").1, "dwcp_transport_tls_handshakes_failed_total") ?? 0
        }
        let failedBefore = try await handshakesFailed(follower)
        try sendRaw(timeoutNow.encoded(), port: region.replicationPorts[Region.ids.firstIndex(of: follower)!])
        var failedAfter = failedBefore
        let counted = ContinuousClock.now + .seconds(10)
        while failedAfter == failedBefore, ContinuousClock.now < counted {
            try await Task.sleep(for: .milliseconds(50))
            failedAfter = try await handshakesFailed(follower)
        }
        #expect(failedAfter == failedBefore + 1, "\(region.stderr(follower).suffix(2000))")
        #expect(region.stderr(follower).contains("TLS handshake failed: it does not speak TLS"))
        try await Task.sleep(for: .seconds(1))
        #expect(await region.cluster(leader)["role"] == "leader")
        #expect(await region.cluster(follower)["term"] == term)

        // A member restarted with a certificate of another authority can reach no one, and no
        // one it; the other two go on committing.
        let cutOff = Region.ids.first { $0 != leader && $0 != follower }!
        #expect(try await region.kill(cutOff, SIGKILL) == SIGKILL)
        try await region.start(cutOff, tag: "stranger", certificates: dir.file("stranger"))
        created += try await create(2, count: 10, through: [leader, follower])
        let stuck = logIndex(await region.cluster(cutOff), "applied_index") ?? 0
        let committed = logIndex(await region.cluster(leader), "commit_index") ?? 0
        #expect(stuck < committed, "the member of another authority kept up")
        #expect(
            try await waitUntil(timeout: .seconds(20)) { region.stderr(cutOff).contains("TLS handshake failed") },
            "\(region.stderr(cutOff).suffix(2000))")
        let leaderFailed = try await waitForValue(within: .seconds(20), every: .milliseconds(100)) {
            let failed = metric(
                try await get(region.base(leader)! + "/metrics").1, "dwcp_transport_tls_handshakes_failed_total")
            return (failed ?? 0) >= 1 ? failed : nil
        }
        #expect(leaderFailed != nil, "the leader counted no failed handshake with \(cutOff)")

        // With the region's certificate again it catches up, and every view is the same.
        #expect(try await region.kill(cutOff, SIGTERM) == 0)
        try await region.start(cutOff, tag: "member")
        _ = try await region.waitForCatchUp(to: try await region.leader())
        for id in Region.ids { #expect(try await vmNames(region.base(id)!) == Set(created), "\(id)") }
        try await region.stopAll()
        let dumps = try Region.ids.map { try ViewStore(path: dir.file($0) + "/views.sqlite").dump() }
        for dump in dumps.dropFirst() { #expect(dump == dumps[0], "\(firstDifference(dumps[0], dump))") }
    }
}

extension RegionProcessTests {
    @Test(
        "HTTPS on the API with client certificates: clients of the authority are served, others are not; a follower relays a membership change to the leader over HTTPS; the CLI follows a leader-read refusal to the leader's HTTPS API"
    )
    func mutualTLSOnTheAPI() async throws {
        let dir = TemporaryDirectory()
        var members = Dictionary(uniqueKeysWithValues: Region.ids.map { ($0, "127.0.0.1") })
        members["client"] = "127.0.0.1"
        try await makePeerCertificates(in: dir.file("certs"), members)
        try await makePeerCertificates(in: dir.file("stranger"), ["mallory": "127.0.0.1"])
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(dir.file("certs/ca.pem"))
        tls.certificateChain = [.certificate(try NIOSSLCertificate(file: dir.file("certs/client.pem"), format: .pem))]
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: dir.file("certs/client.key"), format: .pem))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        testHTTPSClient.withLock { $0 = client }
        // (A client dropped before its shutdown stops the whole test process.)
        do {
            try await apiTLSSteps(dir)
        } catch {
            testHTTPSClient.withLock { $0 = nil }
            try await client.shutdown()
            throw error
        }
        testHTTPSClient.withLock { $0 = nil }
        try await client.shutdown()
    }

    private func apiTLSSteps(_ dir: TemporaryDirectory) async throws {
        // The leader verifies the members' views on its own, asking them over HTTPS (below).
        let region = try Region(
            dir, extraArguments: ["--verify-every", "1s"], certificates: dir.file("certs"), apiTLS: true)
        let leader = try await region.startAll()
        #expect(region.processes.withLock { $0[leader]!.stdout }.contains("listening on https://127.0.0.1:"))
        let (_, nodeStatus) = try await get(region.base(leader)! + "/v1/status")
        #expect(
            nodeStatus.contains(#""api_tls":"mutual""#) && nodeStatus.contains(#""replication_tls":"mutual""#),
            "\(nodeStatus)")
        try await region.addRoomyHost(via: leader)

        // Asked of a follower, sent on to the leader's HTTPS API with the follower's certificate.
        let added = try await region.onFollower(
            "/v1/cluster/members", #"{"id":"n9","address":"127.0.0.1:9","learner":true}"#)
        #expect(added.status == 200 && added.relayed, "\(added)")

        // The CLI: with the authority's client certificate it is served, and follows a refusal
        // naming the leader's API there, over HTTPS; without one, or with another authority's,
        // it is told why.
        let follower = Region.ids.first { $0 != leader && region.base($0) != nil }!
        let trust = ["--ca-file", dir.file("certs/ca.pem")]
        let identity = ["--cert-file", dir.file("certs/client.pem"), "--key-file", dir.file("certs/client.key")]
        let query = ["sql", "SELECT name FROM hosts", "--format", "csv", "--consistency", "leader"]
        let (status, output, said) = try await runCLI(
            query + ["--server", "https://" + region.apiAddress(follower)] + trust + identity, in: dir)
        #expect(status == 0, "\(said)")
        #expect(output.contains("h1"), "\(output)")
        #expect(said.contains("asking it there"), "\(said)")
        // The leader's own verify reached every member's HTTPS API with its certificate (n9, the
        // learner at a dead address, cannot answer).
        let views = try await waitForValue(within: .seconds(30), every: .milliseconds(250)) {
            () async throws -> String? in
            let (_, out, _) = try await runCLI(
                ["cluster", "status", "--server", "https://" + region.apiAddress(follower)] + trust + identity, in: dir)
            return out.split(separator: "\n").first {
                $0.hasPrefix("views: no digest from n9") && $0.contains("the 3 that answered agree")
            }
            .map(String.init)
        }
        #expect(views != nil)
        let (bare, _, bareSaid) = try await runCLI(
            ["status", "--server", "https://" + region.apiAddress(leader)] + trust, in: dir)
        #expect(bare == 1 && bareSaid.contains("it asks for a certificate this side did not present"), "\(bareSaid)")
        let strange = [
            "--cert-file", dir.file("stranger/mallory.pem"), "--key-file", dir.file("stranger/mallory.key"),
        ]
        let (stranger, _, strangerSaid) = try await runCLI(
            ["status", "--server", "https://" + region.apiAddress(leader)] + trust + strange, in: dir)
        #expect(stranger == 1 && strangerSaid.contains("it does not trust this side's certificate"), "\(strangerSaid)")
        let (plain, _, plainSaid) = try await runCLI(["status", "--server", region.apiAddress(leader)], in: dir)
        #expect(plain == 1 && plainSaid.contains("its API speaks HTTPS (then use --server https:"), "\(plainSaid)")
        // A DELETE in plain text gets an alert, not a closed connection: told alike.
        let (plainDelete, _, plainDeleteSaid) = try await runCLI(
            ["host", "remove", "h9", "--server", region.apiAddress(leader)], in: dir)
        #expect(
            plainDelete == 1 && plainDeleteSaid.contains("its API speaks HTTPS (then use --server https:"),
            "\(plainDeleteSaid)")
        // Members stop promptly: a closing TLS connection waits 0.5 s at most for the peer's goodbye
        // (NIO's default of 5 s made each member's stop wait that out with the client's idle connections).
        let stops = try await region.stopAll()
        let stopping = stops.values.reduce(Duration.zero, +)
        #expect(stopping < .seconds(14), "stopping three members took \(stopping): \(stops)")
    }
}

extension RegionProcessTests {
    @Test(
        "SIGHUP reloads the certificates: renewed files take effect for new connections without a restart; files that cannot be used leave the ones in use"
    )
    func certificatesReloadOnSIGHUP() async throws {
        let dir = TemporaryDirectory()
        for authority in ["a", "b"] {
            try await makePeerCertificates(in: dir.file(authority), ["n1": "127.0.0.1", "ops": "127.0.0.1"])
        }
        let live = dir.file("live")
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        /// Puts authority `name`'s files where the node reads them.
        func install(_ name: String) throws {
            for (from, to) in [("n1.pem", "n1.pem"), ("n1.key", "n1.key"), ("ca.pem", "ca.pem")] {
                let target = "\(live)/\(to)"
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: dir.file("\(name)/\(from)"), toPath: target)
            }
        }
        try install("a")
        let replication = try closedPort()
        let tls = [
            "--peer-cert-file", "\(live)/n1.pem", "--peer-key-file", "\(live)/n1.key", "--peer-trusted-ca-file",
            "\(live)/ca.pem", "--api-cert-file", "\(live)/n1.pem", "--api-key-file", "\(live)/n1.key",
            "--api-trusted-ca-file", "\(live)/ca.pem",
        ]
        let node = try DwcpProcess(
            ProcessTests.serve(dir.file("data")) + [
                "--listen", "127.0.0.1:\(replication)", "--peer", "n1@127.0.0.1:\(replication)",
            ] + tls, directory: dir, tag: "node")
        let server = "https://127.0.0.1:\(try await node.waitForPort())"
        /// Whether a client of authority `name` is served.
        func served(as name: String) async throws -> Bool {
            let client = [
                "--ca-file", dir.file("\(name)/ca.pem"), "--cert-file", dir.file("\(name)/ops.pem"), "--key-file",
                dir.file("\(name)/ops.key"),
            ]
            return try await runCLI(["status", "--server", server] + client, in: dir).0 == 0
        }
        #expect(try await served(as: "a"))
        #expect(!(try await served(as: "b")))

        try install("b")
        node.kill(SIGHUP)
        #expect(try await waitUntil { node.stderr.contains("SIGHUP: reloaded the certificates") }, "\(node.stderr)")
        #expect(try await served(as: "b"))
        #expect(!(try await served(as: "a")))

        // A key that is not the certificate's: refused, and authority b's files stay in use.
        try FileManager.default.removeItem(atPath: "\(live)/n1.key")
        try FileManager.default.copyItem(atPath: dir.file("a/n1.key"), toPath: "\(live)/n1.key")
        node.kill(SIGHUP)
        #expect(
            try await waitUntil { node.stderr.contains("SIGHUP: cannot reload the certificates") }, "\(node.stderr)")
        #expect(try await served(as: "b"))
        node.kill(SIGTERM)
        #expect(try await node.waitForExit() == 0, "\(node.stderr)")
    }
}
