import Foundation
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
        try makePeerCertificates(in: dir.file("certs"), members)
        try makePeerCertificates(in: dir.file("stranger"), members)
        let region = try Region(dir, certificates: dir.file("certs"))
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
        let term = await region.cluster(leader)["term"]
        let timeoutNow = RaftFrame(
            group: "region",
            message: RaftMessage(from: leader, to: follower, term: UInt64(term ?? "") ?? 0, body: .timeoutNow))
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
        #expect(region.stderr(cutOff).contains("TLS handshake failed"), "\(region.stderr(cutOff).suffix(2000))")
        let leaderMetrics = try await get(region.base(leader)! + "/metrics").1
        #expect((metric(leaderMetrics, "dwcp_transport_tls_handshakes_failed_total") ?? 0) >= 1, "\(leaderMetrics)")

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
