import Foundation
import GRDB
import Store
import Synchronization
import TestSupport
import Testing

@testable import Node

/// `dwcp serve --verify-every`: the leader verifies the members' views on its own, keeps the
/// outcome for `dwcp cluster status`, counts it in the metrics, and names a member whose views
/// differ.
@Suite struct PeriodicVerifierTests {
    @Test(
        "only the leader verifies; it finds the three members alike, then names the one whose hosts table was changed behind SQLite's back, and a member that does not answer"
    )
    func leaderVerifiesOnItsOwn() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let byID = Dictionary(uniqueKeysWithValues: nodes.map { ($0.configuration.nodeID, $0) })
            let leaderID = try #require(nodes[0].raft!.status.leader)
            let leader = try #require(byID[leaderID])
            _ = try await leader.submit(
                .addHost(HostAdded(name: "h1", region: "eu", cpus: 64, memoryBytes: 64 << 30, labels: ["zone": "a"])))
            // In one process the members have no API: the leader asks the others directly.
            let silent = Mutex<String?>(nil)
            let verifier = PeriodicVerifier(every: .milliseconds(100)) { _, id, index, _ in
                if silent.withLock({ $0 }) == id { return .init(id: id, error: "its API did not answer") }
                do {
                    let digest = try await byID[id]!.viewsDigest(at: index, timeout: .seconds(20))
                    return .init(id: id, digest: digest)
                } catch {
                    return .init(id: id, error: "\(error)")
                }
            }
            // Every member runs the loop; only the leader verifies and keeps an outcome.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for node in nodes { group.addTask { try await verifier.run(node: node) } }
                defer { group.cancelAll() }
                let first = try await waitForValue(within: .seconds(30), every: .milliseconds(50)) {
                    leader.lastPeriodicVerify.withLock { $0 }
                }
                guard case .compared(let comparison)? = first?.outcome else {
                    Issue.record("no comparison: \(String(describing: first))")
                    return
                }
                #expect(comparison.agree && comparison.answers.map(\.id) == ["n1", "n2", "n3"], "\(comparison)")
                #expect(first?.verdict == .same && first?.verifiedBy == leaderID)
            }
            for node in nodes where node !== leader {
                #expect(node.lastPeriodicVerify.withLock { $0 } == nil)
                // Asked of a follower, the last verify is the leader's to tell.
                let refused = #expect(throws: NodeError.self) { try node.periodicVerifyStatus() }
                #expect(refused?.code == .unavailable && refused?.message.contains("is not the leader") == true)
            }

            // A label changed in one follower's file: that member is named, with the table.
            let damaged = try #require(nodes.first { $0 !== leader })
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)  // The member may be applying meanwhile.
            let writer = try DatabaseQueue(path: damaged.views.path, configuration: configuration)
            try await writer.write { try $0.execute(sql: #"UPDATE hosts SET labels = '{"zone":"b"}'"#) }
            try writer.close()
            let check = try await verifier.verifyOnce(node: leader)
            guard case .compared(let comparison) = check.outcome else {
                Issue.record("no comparison: \(check)")
                return
            }
            let damagedID = damaged.configuration.nodeID
            #expect(comparison.differingMembers.map(\.id) == [damagedID], "\(comparison)")
            #expect(comparison.differingMembers.first?.tables == ["hosts"])
            #expect(check.verdict == .differs)
            leader.recordPeriodicVerify(check)
            let status = try leader.periodicVerifyStatus()
            #expect(status["outcome"] == .string("differs") && status["log_index"] == .int(Int64(comparison.logIndex)))
            #expect(
                status["differences"]
                    == .array([.object([("id", .string(damagedID)), ("tables", .array([.string("hosts")]))])]),
                "\(status.serialized())")
            let metrics = leader.metrics.render(node: leader)
            #expect(metrics.contains(#"dwcp_views_verifications_total{outcome="differs"} 1"#), "\(metrics)")
            #expect(metrics.contains("dwcp_views_verification_differs 1"), "\(metrics)")
            #expect(!metrics.contains("dwcp_views_verification_last_compared_timestamp_seconds 0"), "\(metrics)")
            // A member that does not lead says nothing of the region's views.
            let follower = try #require(nodes.first { $0 !== leader })
            follower.recordPeriodicVerify(check)
            #expect(follower.metrics.render(node: follower).contains("dwcp_views_verification_differs 0"))

            // A member that does not answer: the outcome is incomplete, and no one is named.
            let other = try #require(nodes.first { $0 !== leader && $0 !== damaged }).configuration.nodeID
            silent.withLock { $0 = other }
            let partial = try await verifier.verifyOnce(node: leader)
            guard case .compared(let incomplete) = partial.outcome else {
                Issue.record("no comparison: \(partial)")
                return
            }
            // Two answers of three, which differ: no majority for hosts, so neither is blamed.
            #expect(incomplete.differingMembers.isEmpty && incomplete.tablesWithoutMajority == ["hosts"])
            #expect(incomplete.unanswered.map(\.id) == [other] && partial.verdict == .differs)

            // The damaged member silent: the two that answer agree, the outcome is incomplete, and
            // the gauge keeps saying the views differ (that member is not known to be repaired).
            silent.withLock { $0 = damagedID }
            let unknown = try await verifier.verifyOnce(node: leader)
            #expect(unknown.verdict == .incomplete, "\(unknown)")
            leader.recordPeriodicVerify(unknown)
            #expect(leader.metrics.render(node: leader).contains("dwcp_views_verification_differs 1"))
            #expect(try leader.periodicVerifyStatus()["outcome"] == .string("incomplete"))
        }
    }
}
