import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct MemberFoundingTests {
    @Test(
        "a member started with a member more in its --peer list is cut off: the others lead and commit without it, it takes none of their entries, and once added again it is heard"
    )
    func memberFoundedOtherwiseIsIgnored() async throws {
        let dir = TemporaryDirectory()
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        // n3's list has a fourth member: its first entry differs from the others'.
        var larger = peers
        larger["n4"] = "127.0.0.1:\(try closedPort())"
        let (first, second) = (
            try regionMember("n1", in: dir, port: ports[0], peers: peers),
            try regionMember("n2", in: dir, port: ports[1], peers: peers)
        )
        let (n1, n2) = (first.raft!, second.raft!)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in [first, second] { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            let leaderID: String = try await withThrowingTaskGroup(of: Void.self) { third in
                let wrong = try regionMember("n3", in: dir, port: ports[2], peers: larger)
                third.addTask { try await wrong.run() }
                defer { third.cancelAll() }
                let n3 = wrong.raft!
                #expect(n1.founding != nil && n1.founding == n2.founding && n3.founding != n1.founding)
                // Each side heard the other's founding; n3, whose list counts four voters, is not
                // outnumbered by two (nor are n1 and n2 by one).
                #expect(
                    try await waitUntil(timeout: .seconds(30)) {
                        n1.otherFounding(of: "n3") != nil && n2.otherFounding(of: "n3") != nil
                            && n3.otherFounding(of: "n1") != nil && n3.otherFounding(of: "n2") != nil
                    })
                #expect(n1.otherFounding(of: "n2") == nil)
                #expect(n1.foundingOfTheOthers() == nil && n2.foundingOfTheOthers() == nil)
                // n1 and n2 elect one of them and commit without n3.
                #expect(
                    try await waitUntil(timeout: .seconds(60)) {
                        let leader = n1.status.leader
                        return leader != nil && leader != "n3" && n2.status.leader == leader
                    })
                let leaderID = try #require(n1.status.leader)
                let leader = leaderID == "n1" ? first : second
                let before = wrong.log.lastIndex
                for name in ["h1", "h2"] { _ = try await leader.submit(NodeIntentTests.host(name)) }
                let written = leader.log.lastIndex
                #expect(try await waitUntil { first.applied.value >= written && second.applied.value >= written })
                try await Task.sleep(for: .milliseconds(300))
                #expect(wrong.log.lastIndex <= before, "n3 took the leader's entries: \(wrong.log.lastIndex)")
                #expect(try await rows(wrong, "SELECT name FROM hosts") == "[]")
                // It cannot be handed the leadership, and the leader's cluster status marks it.
                let transfer = await #expect(throws: NodeError.self) {
                    _ = try await leader.raft!.moveLeadership(to: "n3", timeout: .seconds(1))
                }
                #expect(
                    transfer?.message.contains("cannot lead this region") == true, "\(String(describing: transfer))")
                let status = await leader.clusterStatus(timeout: .milliseconds(500))
                guard case .array(let members) = status["members"] else {
                    Issue.record("no members in \(status.serialized())")
                    return leaderID
                }
                #expect(
                    members.first { $0["id"] == .string("n3") }?["other_founding"] == .string(n3.founding ?? ""),
                    "\(status.serialized())")
                #expect(members.first { $0["id"] == .string("n2") }?["other_founding"] == nil)
                return leaderID
            }
            // n3 stopped, its directory emptied, started with --join (as the log line says): it
            // says it knows no founding, and what it said before no longer stands.
            try FileManager.default.removeItem(atPath: dir.file("n3"))
            // (Its --peer list without itself, as a joiner's is: it says the address it listens on.)
            let rejoined = try regionMember(
                "n3", in: dir, port: ports[2], peers: peers.filter { $0.key != "n3" }, join: true)
            group.addTask { try await rejoined.run() }
            #expect(rejoined.raft!.founding == nil)
            let leader = leaderID == "n1" ? n1 : n2
            #expect(try await waitUntil(timeout: .seconds(30)) { leader.otherFounding(of: "n3") == nil })
            // Heard again: it catches up from the leader.
            let written = (leaderID == "n1" ? first : second).log.lastIndex
            #expect(try await waitUntil(timeout: .seconds(30)) { rejoined.applied.value >= written })
        }
    }

    @Test(
        "a member started with itself alone in its --peer list neither follows the others' leader nor takes their entries, and both sides name the other"
    )
    func memberStartedAloneIsNotFollowed() async throws {
        let dir = TemporaryDirectory()
        let ports = try (0..<3).map { _ in try closedPort() }
        let peers = ["n1": "127.0.0.1:\(ports[0])", "n2": "127.0.0.1:\(ports[1])", "n3": "127.0.0.1:\(ports[2])"]
        let (saidByN1, saidByN3) = (RecordedLog(), RecordedLog())
        let nodes = try [
            regionMember("n1", in: dir, port: ports[0], peers: peers, logger: saidByN1.logger),
            regionMember("n2", in: dir, port: ports[1], peers: peers),
            regionMember("n3", in: dir, port: ports[2], peers: ["n3": peers["n3"]!], logger: saidByN3.logger),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes { group.addTask { try await node.run() } }
            defer { group.cancelAll() }
            let (n1, n2, n3) = (nodes[0].raft!, nodes[1].raft!, nodes[2].raft!)
            // n3 has no address for n1 or n2 (its membership is itself): it hears their founding
            // as they tell it, and tells them its own in turn.
            let heard = try await waitUntil(timeout: .seconds(30)) {
                n1.otherFounding(of: "n3") != nil && n2.otherFounding(of: "n3") != nil
                    && n3.otherFounding(of: "n1") != nil && n3.otherFounding(of: "n2") != nil
            }
            #expect(
                heard,
                "n1 \(n1.otherFounding(of: "n3") ?? "-"), n2 \(n2.otherFounding(of: "n3") ?? "-"), n3 \(n3.otherFounding(of: "n1") ?? "-") \(n3.otherFounding(of: "n2") ?? "-")"
            )
            #expect(
                try await waitUntil(timeout: .seconds(60)) {
                    let leader = n1.status.leader
                    return leader != nil && leader != "n3" && n2.status.leader == leader
                })
            let leader = try #require(nodes.first { $0.configuration.nodeID == n1.status.leader })
            for name in ["h1", "h2"] { _ = try await leader.submit(NodeIntentTests.host(name)) }
            let written = leader.log.lastIndex
            #expect(try await waitUntil { nodes[0].applied.value >= written && nodes[1].applied.value >= written })
            try await Task.sleep(for: .milliseconds(300))
            #expect(n3.status.leader != leader.configuration.nodeID, "n3 follows the others' leader")
            // n1, whose voters n1 and n2 share its founding, names n3 to add again; n3, alone in
            // its membership, cannot tell which list was wrong, and asks to compare them.
            #expect(saidByN1.contains("n3 was started with other members in its --peer list"))
            // n1 may hear n3 before n2: it then logs again, decided, at n3's next telling (2 s).
            #expect(
                try await waitUntil(timeout: .seconds(20)) {
                    saidByN1.contains("remove n3 (dwcp cluster remove-member n3")
                },
                "\(saidByN1.lines.filter { $0.contains("founding") })")
            #expect(
                saidByN3.contains("compare the two --peer lists"),
                "\(saidByN3.lines.filter { $0.contains("founding") })")
            #expect(try await rows(nodes[2], "SELECT name FROM hosts WHERE name LIKE 'h%'") == "[]")
        }
    }

    @Test("the remedy for a node started otherwise removes it first only when the region has it")
    func rejoinRemedyOfANodeNotAdded() {
        #expect(NodeError.rejoinRemedy("n6").hasPrefix("remove n6 (dwcp cluster remove-member n6"))
        let notAdded = NodeError.rejoinRemedy("n6", isMember: false)
        #expect(
            !notAdded.contains("remove-member") && notAdded.hasPrefix("empty n6's data directory, start it with --join")
        )
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
        // A member that says it knows none (started again with --join) is forgotten.
        regions.forgetFounding(of: "n2")
        #expect(regions.otherFounding(of: "n2", own: "f3") == nil)
        // n1, seen from n1's side: one member (n3) otherwise is no majority.
        var first = MemberRegions()
        first.noteMembers(["n1", "n2", "n3"])
        _ = first.record(founding: "f3", from: "n3", own: "f1")
        _ = first.record(founding: "f1", from: "n2", own: "f1")
        #expect(first.majorityFoundedOtherwise(membership, own: "f1", id: "n1") == nil)
        #expect(first.otherFounding(of: "n3", own: "f1") == "f3" && first.otherFounding(of: "n2", own: "f1") == nil)
    }

    @Test(
        "a member told another founding before it heard its voters logs it again, with the remedy, once they share its own; not a minute later"
    )
    func undecidedIsLoggedAgainOnceDecided() {
        var regions = MemberRegions()
        regions.noteMembers(["n1", "n2", "n3"])
        let start = ContinuousClock.now
        let first = regions.record(founding: "f3", from: "n3", own: "f1", at: start)
        #expect(first)
        regions.noteLoggedUndecided("n3")
        // Retold 2 s later, before n2 said anything: not logged again for a minute.
        let retold = regions.record(founding: "f3", from: "n3", own: "f1", at: start + .seconds(2))
        #expect(!retold)
        _ = regions.record(founding: "f1", from: "n2", own: "f1", at: start + .seconds(3))
        regions.decideLoggedUndecided()
        let decided = regions.record(founding: "f3", from: "n3", own: "f1", at: start + .seconds(4))
        #expect(decided)
        // Decided once: the minute holds again.
        regions.decideLoggedUndecided()
        let again = regions.record(founding: "f3", from: "n3", own: "f1", at: start + .seconds(6))
        #expect(!again)
    }

    @Test(
        "the founding is the digest of the first entry's members, whatever their addresses; kept beside the log for when it is compacted away, and dropped with an empty log"
    )
    func foundingIsKept() throws {
        let dir = TemporaryDirectory()
        let logger = Logger(label: "test")
        let membership = RaftMembership(voters: ["n1": "127.0.0.1:1", "n2": "127.0.0.1:2"])
        let first = LogEntry(index: 1, term: 1, kind: .membership, payload: membership.encoded())
        let founding = RaftConsensus.founding(
            in: dir.path, group: "region", logIsEmpty: true, first: first, logger: logger)
        #expect(founding == MemberFounding.digest(of: membership) && founding?.count == 16)
        // Compacted: the first entry is gone, the kept digest is the founding.
        let later = LogEntry(index: 40, term: 2, kind: .noop, payload: [])
        #expect(
            RaftConsensus.founding(in: dir.path, group: "region", logIsEmpty: false, first: later, logger: logger)
                == founding)
        // Addresses written otherwise are the same founding; a member more, or a learner, is another.
        let renamed = RaftMembership(voters: ["n1": "host-1:1", "n2": "HOST-2:2"])
        #expect(MemberFounding.digest(of: renamed) == founding)
        let more = RaftMembership(voters: ["n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"])
        #expect(MemberFounding.digest(of: more) != founding)
        let learner = RaftMembership(voters: ["n1": "127.0.0.1:1"], learners: ["n2": "127.0.0.1:2"])
        #expect(MemberFounding.digest(of: learner) != founding)
        // An empty log (a --join into an old directory) drops what a log before it kept.
        #expect(
            RaftConsensus.founding(in: dir.path, group: "region", logIsEmpty: true, first: nil, logger: logger) == nil)
        #expect(
            RaftConsensus.founding(in: dir.path, group: "region", logIsEmpty: false, first: later, logger: logger)
                == nil)
    }
}
