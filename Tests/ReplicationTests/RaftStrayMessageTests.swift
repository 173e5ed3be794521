import Store
import Testing

@testable import Replication

/// Frames no member sends (a stray or forged one on a plain-TCP replication port, found by a
/// black-box test) are dropped and reported, and change nothing: not the term, not the leader's
/// view of a follower, not whether a member counts itself removed.
@Suite struct RaftStrayMessageTests {
    /// A three-member group with a leader, settled.
    static func group() -> (TestCluster, leader: String, follower: String) {
        var cluster = TestCluster(["n1", "n2", "n3"])
        let leader = cluster.electLeader()
        cluster.settle()
        return (cluster, leader, cluster.member(otherThan: leader))
    }

    @Test("an answer of a later term from a node that is no member moves no member's term and calls no election")
    func answersFromNonMembersAreDropped() throws {
        var (cluster, leader, follower) = Self.group()
        let term = cluster.members[follower]!.term
        for (to, body) in [
            (follower, RaftMessage.Body.heartbeatResponse(readContext: 0)),
            (follower, .voteResponse(granted: true)),
            (leader, .appendResponse(accepted: true, index: 1, hintIndex: 0, hintTerm: 0)),
            (leader, .preVoteResponse(granted: true)),
        ] {
            cluster.members[to]!.step(RaftMessage(from: "zz", to: to, term: term + 100, body: body))
            let ready = cluster.members[to]!.takeReady()
            #expect(ready.disregarded.map(\.from) == ["zz"], "\(body.name) to \(to)")
            #expect(ready.disregarded.first?.reason.contains("zz is not a member") == true)
        }
        cluster.tick(30)
        #expect(cluster.leader == leader)
        #expect(cluster.members.values.allSatisfy { $0.term == term })
    }

    @Test("a removal notice from a node that is no member is dropped; the member stays in")
    func aRemovalNoticeFromANonMemberIsDropped() throws {
        var (cluster, _, follower) = Self.group()
        cluster.members[follower]!.step(
            RaftMessage(from: "zz", to: follower, term: 0, body: .removed(index: 1 << 62)))
        #expect(cluster.members[follower]!.takeReady().disregarded.map(\.kind) == ["removed"])
        #expect(!cluster.members[follower]!.isToldRemoved)
    }

    @Test(
        "a removal notice from the leader this member follows counts, though it is in no membership the member holds yet"
    )
    func aRemovalNoticeFromTheLeaderCounts() throws {
        var (cluster, _, follower) = Self.group()
        let term = cluster.members[follower]!.term
        // n9 was added, and leads, while this member was behind: it follows n9's heartbeats.
        cluster.members[follower]!.step(
            RaftMessage(from: "n9", to: follower, term: term + 1, body: .heartbeat(commit: 0, readContext: 0)))
        #expect(cluster.members[follower]!.leader == "n9")
        cluster.members[follower]!.step(
            RaftMessage(from: "n9", to: follower, term: term + 1, body: .removed(index: 50)))
        #expect(cluster.members[follower]!.takeReady().disregarded.isEmpty)
        #expect(cluster.members[follower]!.isToldRemoved)
    }

    @Test(
        "an acknowledgement past the leader's last index is dropped: the follower is neither counted caught up nor sent snapshots"
    )
    func anAcknowledgementPastTheLogIsDropped() throws {
        var (cluster, leader, follower) = Self.group()
        let last = cluster.members[leader]!.lastIndex
        let term = cluster.members[leader]!.term
        cluster.members[leader]!.step(
            RaftMessage(
                from: follower, to: leader, term: term,
                body: .appendResponse(accepted: true, index: last + 1000, hintIndex: 0, hintTerm: 0)))
        #expect(
            cluster.members[leader]!.takeReady().disregarded.first?.reason.contains("past this leader's last index")
                == true)
        #expect(cluster.members[leader]!.progress[follower]!.match <= last)
        // The follower still gets what the leader appends next, and no snapshot.
        _ = try cluster.members[leader]!.propose([Array("x".utf8)])
        cluster.tick(10)
        #expect(cluster.records(follower).contains("x"))
        #expect(cluster.snapshotsSent[follower] == nil)
    }
}

/// Terms and log indexes stop below what the views and the wire can keep (signed 64 bits): past a
/// ceiling 2^32 below the last term, terms are taken one step at a time, so that no one message of
/// a made-up term leaves the region no term to elect a leader in; a member at the last term stays
/// a follower instead of counting past it.
@Suite struct RaftTermLimitTests {
    @Test("an index past the ceiling, or an entry of a later term than its message's, is dropped; nothing moves")
    func indexesPastTheCeilingAreDropped() throws {
        var (cluster, leader, follower) = RaftStrayMessageTests.group()
        let term = cluster.members[follower]!.term
        let last = cluster.members[follower]!.lastIndex
        let past = Raft.largestAccepted + 1
        for body in [
            RaftMessage.Body.append(
                prevIndex: past, prevTerm: term, entries: [LogEntry(index: past + 1, term: term, payload: [])],
                commit: 0),
            .append(
                prevIndex: last, prevTerm: term, entries: [LogEntry(index: last + 1, term: term + 1, payload: [])],
                commit: 0),
            .snapshot(RaftSnapshotMeta(index: past, term: term, membership: RaftMembership())),
            .snapshot(RaftSnapshotMeta(index: last + 5, term: term + 1, membership: RaftMembership())),
        ] {
            cluster.members[follower]!.step(RaftMessage(from: leader, to: follower, term: term, body: body))
            #expect(cluster.members[follower]!.takeReady().disregarded.map(\.cause) == [.outOfRange], "\(body)")
        }
        #expect(cluster.members[follower]!.term == term)
        #expect(cluster.members[follower]!.lastIndex == last)
        cluster.tick(30)
        #expect(cluster.leader == leader)
    }

    @Test(
        "a made-up term past the ceiling moves a member to the ceiling, then one term a message; a region taken to the ceiling still elects leaders"
    )
    func termsPastTheCeilingAreTakenOneStepAtATime() throws {
        var (cluster, leader, follower) = RaftStrayMessageTests.group()
        let ceiling = Raft.largestAccepted
        let heartbeat = RaftMessage.Body.heartbeat(commit: 0, readContext: 0)
        cluster.members[follower]!.step(
            RaftMessage(from: leader, to: follower, term: Raft.largestTerm, body: heartbeat))
        #expect(cluster.members[follower]!.takeReady().disregarded.map(\.cause) == [.outOfRange])
        #expect(cluster.members[follower]!.term == ceiling)
        cluster.members[follower]!.step(
            RaftMessage(from: leader, to: follower, term: Raft.largestTerm, body: heartbeat))
        #expect(cluster.members[follower]!.term == ceiling + 1)
        // A pre-vote moves no term, however far.
        cluster.members[follower]!.step(
            RaftMessage(
                from: leader, to: follower, term: Raft.largestTerm,
                body: .preVote(lastIndex: 1 << 40, lastTerm: Raft.largestTerm)))
        #expect(cluster.members[follower]!.term == ceiling + 1)
        // The region goes on from there: a leader is elected, past the ceiling, and every member
        // follows it (a member behind comes along a term a message).
        cluster.tick(60)
        let elected = try #require(cluster.leader)
        #expect(cluster.members[elected]!.term >= ceiling + 1)
        #expect(cluster.members.values.allSatisfy { $0.term == cluster.members[elected]!.term })
        _ = try cluster.members[elected]!.propose([Array("after".utf8)])
        cluster.tick(10)
        for member in cluster.members.keys { #expect(cluster.records(member).contains("after"), "\(member)") }
    }

    @Test("a region whose members a heartbeat took to exactly the ceiling elects a leader again")
    func aRegionAtTheCeilingElects() throws {
        var (cluster, leader, follower) = RaftStrayMessageTests.group()
        cluster.members[follower]!.step(
            RaftMessage(
                from: leader, to: follower, term: Raft.largestAccepted, body: .heartbeat(commit: 0, readContext: 0)))
        #expect(cluster.members[follower]!.takeReady().disregarded.isEmpty)
        #expect(cluster.members[follower]!.term == Raft.largestAccepted)
        cluster.tick(60)
        let elected = try #require(cluster.leader)
        #expect(cluster.members[elected]!.term > Raft.largestAccepted)
        #expect(cluster.members.values.allSatisfy { $0.term == cluster.members[elected]!.term })
    }

    /// A lone voter whose hard state holds `term`, ticked past its election timeout.
    func loneVoter(atTerm term: UInt64) -> Raft {
        let membership = RaftMembership(voters: ["n1": "addr-n1"])
        var raft = Raft(
            id: "n1", seed: 1, hardState: HardState(term: term),
            snapshot: RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership()),
            entries: [LogEntry(index: 1, term: 1, kind: .membership, payload: membership.encoded())])
        for _ in 0..<(4 * RaftConfiguration().electionTicks) { raft.tick() }
        return raft
    }

    @Test("a member at the last term does not campaign past it; one term below it, it still does")
    func noCampaignPastTheLastTerm() throws {
        let stuck = loneVoter(atTerm: Raft.largestTerm)
        #expect(stuck.role == .follower)
        #expect(stuck.term == Raft.largestTerm)
        let room = loneVoter(atTerm: Raft.largestTerm - 1)
        #expect(room.role == .leader)
        #expect(room.term == Raft.largestTerm)
    }
}
