import Foundation
import Logging
import Replication
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct MemberRegionTests {
    @Test(
        "a member started with another --region is cut off: the others lead and commit without it, and it takes none of their entries"
    )
    func memberOfAnotherRegionIsIgnored() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir, regions: ["n3": "us"]) { nodes, _ in
            let (n1, n3) = (nodes[0].raft!, nodes[2].raft!)
            // Each side heard the other's region (n3 says it to both as it starts; they to it).
            #expect(try await waitUntil { n1.otherRegion(of: "n3") == "us" && n3.otherRegion(of: "n1") == "eu" })
            #expect(try await waitUntil { n1.region(of: "n2") == "eu" })
            #expect(n1.otherRegion(of: "n2") == nil)
            // Only n3 finds itself outnumbered: n1 and n2 do not take the blame.
            #expect(n3.regionOfTheOthers() == "eu")
            #expect(n1.regionOfTheOthers() == nil && nodes[1].raft!.regionOfTheOthers() == nil)
            let leaderID = try #require(n1.status.leader)
            let leader = try #require(nodes.first { $0.configuration.nodeID == leaderID })
            let before = nodes[2].log.lastIndex

            // Writes commit on the two members in "eu"; n3's log gets none of them.
            for name in ["h1", "h2", "h3"] { _ = try await leader.submit(NodeIntentTests.host(name)) }
            let written = leader.log.lastIndex
            #expect(try await waitUntil { nodes[0].applied.value >= written && nodes[1].applied.value >= written })
            try await Task.sleep(for: .milliseconds(300))
            #expect(nodes[2].log.lastIndex == before, "n3 took the leader's entries: \(nodes[2].log.lastIndex)")
            #expect(try await rows(nodes[2], "SELECT name FROM hosts") == "[]")
            #expect(n3.status.leader != leaderID, "n3 follows the leader of another region")
            // An intent sent to n3 is refused at once, saying why.
            let refusal = await #expect(throws: NodeError.self) {
                _ = try await nodes[2].submit(NodeIntentTests.host("h9", region: "us"))
            }
            #expect(
                refusal?.message.contains("voters say eu: they ignore it") == true, "\(String(describing: refusal))")
            // Nor can n3 be handed the leadership.
            let transfer = await #expect(throws: NodeError.self) {
                _ = try await leader.raft!.moveLeadership(to: "n3", timeout: .seconds(1))
            }
            #expect(transfer?.message.contains("cannot lead this region") == true, "\(String(describing: transfer))")

            // The cluster status the leader gives shows n3's region.
            let status = await leader.clusterStatus(timeout: .milliseconds(500))
            #expect(status["region"] == .string("eu"))
            guard case .array(let members) = status["members"] else {
                Issue.record("no members in \(status.serialized())")
                return
            }
            let third = members.first { $0["id"] == .string("n3") }
            #expect(third?["region"] == .string("us"), "\(status.serialized())")
        }
    }

    @Test("dwcp cluster add-member refuses a node that said it was started with another --region")
    func joinerOfAnotherRegionIsRefused() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, peers in
            let leader = try leader(of: nodes)
            let port = try closedPort()
            let joiner = try regionMember("n4", in: dir, region: "us", port: port, peers: peers, join: true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await joiner.run() }
                defer { group.cancelAll() }
                // n4 tells its --peers its region as it starts, before it is added.
                let told = try await waitUntil { leader.raft!.otherRegion(of: "n4") == "us" }
                #expect(told)
                let refusal = await #expect(throws: NodeError.self) {
                    _ = try await leader.raft!.changeMembership(.addLearner(id: "n4", address: "127.0.0.1:\(port)"))
                }
                #expect(refusal?.code == .invalid)
                #expect(refusal?.message.contains("--region us") == true, "\(String(describing: refusal))")
                #expect(leader.raft!.status.membership.all["n4"] == nil)
                // n4, with no membership yet, counts its --peer list: once it hears that most of
                // them say eu, it is the one to restart, not they.
                for id in ["n1", "n2"] { _ = joiner.raft!.regions.withLock { $0.record("eu", from: id, own: "us") } }
                #expect(joiner.raft!.regionOfTheOthers() == "eu")
            }
        }
    }

    @Test("dwcp cluster add-member refuses an address whose node said it belongs to another region's id")
    func addressOfAnotherRegionIsRefused() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let leader = try leader(of: nodes)
            let own = try #require(try await waitForValue(within: .seconds(30)) { leader.raft!.transport.regionID })
            // n5, of a region with another id, connects in and says so (it is refused).
            let elsewhere = "127.0.0.1:\(try closedPort())"
            let hello = RaftFrame(
                group: "region",
                hello: ConnectionHello(
                    from: "n5", to: leader.configuration.nodeID, regionID: own ^ 1, address: elsewhere))
            try sendRaw(hello.encoded(), port: leader.configuration.replication!.listenPort)
            #expect(try await waitUntil { leader.raft!.transport.otherRegion(at: elsewhere) == own ^ 1 })
            let refusal = await #expect(throws: NodeError.self) {
                _ = try await leader.raft!.changeMembership(.addLearner(id: "n5", address: elsewhere))
            }
            #expect(refusal?.code == .invalid)
            #expect(
                refusal?.message.contains("said it belongs to another region") == true, "\(String(describing: refusal))"
            )
            #expect(leader.raft!.status.membership.all["n5"] == nil)
        }
    }

    @Test("dwcp cluster status names the node that answers at an address the membership gives another member")
    func statusNamesTheNodeAtAMistypedAddress() async throws {
        // n5 waits to join; the operator adds "n4" at its address.
        try await withThreeMembersAndAJoiner(TemporaryDirectory(), joiner: "n5") { leader, _, port in
            _ = try await leader.raft!.changeMembership(.addLearner(id: "n4", address: "127.0.0.1:\(port)"))
            var row: JSONValue?
            _ = try await waitForValue(within: .seconds(10), every: .milliseconds(100)) { () async -> Bool? in
                if case .array(let members)? = await leader.clusterStatus()["members"] {
                    row = members.first { $0["id"] == .string("n4") }
                }
                return row?["error"]?.stringValue?.contains("listens n5, not n4") == true ? true : nil
            }
            #expect(
                row?["error"]?.stringValue?.contains("at 127.0.0.1:\(port) listens n5, not n4") == true,
                "\(String(describing: row))")
            #expect(row?["reachable"] == .bool(false))
        }
    }

    @Test(
        "MemberRegions keeps what each member said, logs a mismatch once a minute, forgets members that left, and keeps a few outsiders"
    )
    func memberRegionsBookkeeping() {
        var regions = MemberRegions()
        regions.noteMembers(["n1", "n2", "n3"])
        let start = ContinuousClock.now
        let due = [
            regions.record("eu", from: "n2", own: "eu", at: start),
            regions.record("us", from: "n3", own: "eu", at: start),
            regions.record("us", from: "n3", own: "eu", at: start + .seconds(30)),  // within a minute
            regions.record("us", from: "n3", own: "eu", at: start + .seconds(61)),
        ]
        #expect(due == [false, true, false, true])
        #expect(regions.otherRegion(of: "n2", own: "eu") == nil)
        #expect(regions.otherRegion(of: "n3", own: "eu") == "us")
        // n3 alone is no majority of three voters; seen from n3, the two that said eu are.
        let three = RaftMembership(voters: ["n1": "127.0.0.1:1", "n2": "127.0.0.1:2", "n3": "127.0.0.1:3"])
        #expect(regions.majorityRegion(of: three, own: "eu", id: "n1") == nil)
        var seenFromN3 = MemberRegions()
        seenFromN3.noteMembers(["n1", "n2", "n3"])
        _ = seenFromN3.record("eu", from: "n1", own: "us", at: start)
        #expect(seenFromN3.majorityRegion(of: three, own: "us", id: "n3") == nil, "one of two")
        _ = seenFromN3.record("eu", from: "n2", own: "us", at: start)
        #expect(seenFromN3.majorityRegion(of: three, own: "us", id: "n3") == "eu")
        // Restarted with the region's name: no longer cut off.
        let dueAgain = regions.record("eu", from: "n3", own: "eu", at: start + .seconds(62))
        #expect(!dueAgain)
        #expect(regions.otherRegion(of: "n3", own: "eu") == nil)
        // A member that leaves is forgotten: its id, added again later, starts untainted.
        _ = regions.record("us", from: "n3", own: "eu", at: start)
        regions.noteMembers(["n1", "n2"])
        #expect(regions.said["n3"] == nil)
        // Senders that are not members: the newest few are kept; one added stops counting as one.
        _ = regions.record("us", from: "n4", own: "eu", at: start)
        for i in 0..<(MemberRegions.outsiderCapacity + 10) {
            _ = regions.record("us", from: "x\(i)", own: "eu", at: start)
        }
        #expect(regions.said["n4"] == nil, "the oldest outsider is forgotten first")
        #expect(regions.said["x\(MemberRegions.outsiderCapacity + 9)"] == "us")
        #expect(regions.said.count == 1 + MemberRegions.outsiderCapacity, "n2 and the outsiders")
        _ = regions.record("us", from: "n5", own: "eu", at: start)
        regions.noteMembers(["n1", "n2", "n5"])
        for i in 100..<(100 + MemberRegions.outsiderCapacity) {
            _ = regions.record("us", from: "x\(i)", own: "eu", at: start)
        }
        #expect(regions.said["n5"] == "us", "a member is not forgotten to make room for outsiders")
    }
}

extension MemberRegionTests {
    @Test(
        "the region is told again to the members of now (the --peer list while the log holds no membership), not to a member removed since"
    )
    func retoldToMembers() {
        let addresses = ["n1": "a:1", "n2": "a:2", "n4": "a:4", "n6": "a:4", "n9": "a:9"]
        // n9: in the --peer list a member keeps across restarts, removed since.
        let told = RaftConsensus.retold(
            addresses, members: ["n1", "n2", "n4"], peers: ["n1", "n2", "n9"], besides: "n2")
        #expect(told.map(\.id) == ["n1", "n4"])
        #expect(told.map(\.address) == ["a:1", "a:4"])
        let first = RaftConsensus.retold(addresses, members: [], peers: ["n1", "n9"], besides: "n2")
        #expect(first.map(\.id) == ["n1", "n9"])
    }
}
