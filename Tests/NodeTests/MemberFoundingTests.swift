import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct MemberFoundingTests {
    @Test(
        "a member started with another --peer list is cut off: the others lead and commit without it, and it takes none of their entries"
    )
    func memberFoundedOtherwiseIsIgnored() async throws {
        let dir = TemporaryDirectory()
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        // n3's list has n2's address mistyped: its first entry differs from the others'.
        var mistyped = peers
        mistyped["n2"] = "127.0.0.1:\(try closedPort())"
        let nodes = try [
            regionMember("n1", in: dir, port: ports[0], peers: peers),
            regionMember("n2", in: dir, port: ports[1], peers: peers),
            regionMember("n3", in: dir, port: ports[2], peers: mistyped),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            let (n1, n2, n3) = (nodes[0].raft!, nodes[1].raft!, nodes[2].raft!)
            #expect(n1.founding != nil && n1.founding == n2.founding && n3.founding != n1.founding)
            // n1 and n3 heard each other's founding. (n3 tells n2 at the mistyped address, which
            // no one has; n2's founding, from an address n3 does not have for n2, is not taken.)
            #expect(
                try await waitUntil(timeout: .seconds(30)) {
                    n1.otherFounding(of: "n3") != nil && n3.otherFounding(of: "n1") != nil
                })
            #expect(n1.otherFounding(of: "n2") == nil && n3.otherFounding(of: "n2") == nil)
            #expect(n1.foundingOfTheOthers() == nil && n2.foundingOfTheOthers() == nil)
            // n1 and n2 elect one of them and commit without n3.
            #expect(
                try await waitUntil(timeout: .seconds(60)) {
                    let leader = n1.status.leader
                    return leader != nil && leader != "n3" && n2.status.leader == leader
                })
            let leader = try #require(nodes.first { $0.configuration.nodeID == n1.status.leader })
            let before = nodes[2].log.lastIndex
            for name in ["h1", "h2"] { _ = try await leader.submit(NodeIntentTests.host(name)) }
            let written = leader.log.lastIndex
            #expect(try await waitUntil { nodes[0].applied.value >= written && nodes[1].applied.value >= written })
            try await Task.sleep(for: .milliseconds(300))
            #expect(nodes[2].log.lastIndex <= before, "n3 took the leader's entries: \(nodes[2].log.lastIndex)")
            #expect(try await rows(nodes[2], "SELECT name FROM hosts") == "[]")
            // n1's cluster status marks n3.
            let status = await nodes[0].clusterStatus(timeout: .milliseconds(500))
            guard case .array(let members) = status["members"] else {
                Issue.record("no members in \(status.serialized())")
                return
            }
            let third = members.first { $0["id"] == .string("n3") }
            #expect(third?["other_founding"] == .string(n3.founding ?? ""), "\(status.serialized())")
            #expect(members.first { $0["id"] == .string("n2") }?["other_founding"] == nil)
        }
    }

    @Test("a member finds itself the one started otherwise when most of its voters said another founding")
    func outnumbered() {
        var regions = MemberRegions()
        let membership = RaftMembership(voters: ["n1": "a:1", "n2": "a:2", "n3": "a:3"])
        regions.noteMembers(["n1", "n2", "n3"])
        let logged = regions.record(founding: "f1", from: "n1", own: "f3")
        #expect(logged)
        #expect(regions.majorityFoundedOtherwise(membership, own: "f3", id: "n3") == nil)
        let loggedToo = regions.record(founding: "f1", from: "n2", own: "f3")
        #expect(loggedToo)
        #expect(regions.majorityFoundedOtherwise(membership, own: "f3", id: "n3") == "f1")
        // Logged once a minute, not for every retelling; a sender that is neither a member nor
        // heard from is not kept.
        let again = regions.record(founding: "f1", from: "n2", own: "f3")
        #expect(!again)
        let outsider = regions.record(founding: "f9", from: "n7", own: "f3")
        #expect(!outsider && regions.otherFounding(of: "n7", own: "f3") == nil)
        // n1, seen from n1's side: one member (n3) otherwise is no majority.
        var first = MemberRegions()
        first.noteMembers(["n1", "n2", "n3"])
        _ = first.record(founding: "f3", from: "n3", own: "f1")
        _ = first.record(founding: "f1", from: "n2", own: "f1")
        #expect(first.majorityFoundedOtherwise(membership, own: "f1", id: "n1") == nil)
        #expect(first.otherFounding(of: "n3", own: "f1") == "f3" && first.otherFounding(of: "n2", own: "f1") == nil)
    }

    @Test(
        "the founding is the digest of the log's first entry, kept beside the log for when it is compacted away, and dropped with an empty log"
    )
    func foundingIsKept() throws {
        let dir = TemporaryDirectory()
        let logger = Logger(label: "test")
        let first = LogEntry(
            index: 1, term: 1, kind: .membership, payload: RaftMembership(voters: ["n1": "127.0.0.1:1"]).encoded())
        let founding = RaftConsensus.founding(
            in: dir.path, group: "region", logIsEmpty: true, first: first, logger: logger)
        #expect(founding == MemberFounding.digest(ofFirstEntry: first.payload) && founding?.count == 16)
        // Compacted: the first entry is gone, the kept digest is the founding.
        let later = LogEntry(index: 40, term: 2, kind: .noop, payload: [])
        #expect(
            RaftConsensus.founding(in: dir.path, group: "region", logIsEmpty: false, first: later, logger: logger)
                == founding)
        // Another membership is another founding.
        let other = LogEntry(
            index: 1, term: 1, kind: .membership, payload: RaftMembership(voters: ["n1": "127.0.0.1:2"]).encoded())
        #expect(MemberFounding.digest(ofFirstEntry: other.payload) != founding)
        // An empty log (a --join into an old directory) drops what a log before it kept.
        #expect(
            RaftConsensus.founding(in: dir.path, group: "region", logIsEmpty: true, first: nil, logger: logger) == nil)
        #expect(
            RaftConsensus.founding(in: dir.path, group: "region", logIsEmpty: false, first: later, logger: logger)
                == nil)
    }
}
