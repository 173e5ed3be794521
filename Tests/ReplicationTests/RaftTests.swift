import Store
import Testing

@testable import Replication

/// A tiny synchronous harness: every member's ready is persisted at once and its messages are
/// delivered in order, unless the link is cut.
struct TestCluster {
    var members: [String: Raft] = [:]
    var cut: Set<String> = []
    /// Kinds of message (``RaftMessage/Body/name``) lost on every link.
    var dropped: Set<String> = []
    /// Appends refused, by the member they were delivered back to.
    var rejectedAppends: [String: Int] = [:]
    var applied: [String: [LogEntry]] = [:]
    var reads: [String: [RaftReadState]] = [:]
    var snapshots: [String: RaftSnapshotMeta] = [:]
    /// The entries each member's readies released (a log replaced by a snapshot).
    var released: [String: [LogEntry]] = [:]
    var forwarded: [String: [RaftForwardedProposal]] = [:]
    /// The lost logs each member's readies reported (as a leader).
    var lostLogs: [String: [RaftLostLog]] = [:]
    /// Every hard state a member was asked to persist, with the number of entries written beside it.
    var hardStateWrites: [String: [(entries: Int, hardState: HardState)]] = [:]
    /// The ticks (counted by ``tick(_:)``) at which a snapshot was sent, by the member it was for.
    var snapshotsSent: [String: [Int]] = [:]
    /// Messages sent, by sender and kind (``RaftMessage/Body/name``), whether delivered or not.
    var sent: [String: [String: Int]] = [:]
    var ticks = 0

    init(_ ids: [String], configuration: RaftConfiguration = RaftConfiguration()) {
        var voters: [String: String] = [:]
        for id in ids { voters[id] = "addr-\(id)" }
        let first = LogEntry(index: 1, term: 1, kind: .membership, payload: RaftMembership(voters: voters).encoded())
        for (position, id) in ids.enumerated() {
            members[id] = Raft(
                id: id, configuration: configuration, seed: UInt64(position + 1), hardState: HardState(term: 1),
                snapshot: RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership()), entries: [first])
        }
    }

    mutating func join(_ id: String) {
        members[id] = Raft(
            id: id, seed: 99, hardState: HardState(),
            snapshot: RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership()), entries: [])
    }

    /// Runs readies and deliveries until nothing moves.
    mutating func settle() {
        var moved = true
        var rounds = 0
        while moved, rounds < 10_000 {
            moved = false
            rounds += 1
            for id in members.keys.sorted() {
                let ready = members[id]!.takeReady()
                if ready.isEmpty { continue }
                moved = true
                if let last = ready.entries.last { members[id]!.persisted(through: last.index, term: last.term) }
                if let hardState = ready.hardState {
                    hardStateWrites[id, default: []].append((ready.entries.count, hardState))
                }
                applied[id, default: []].append(contentsOf: ready.committed)
                reads[id, default: []].append(contentsOf: ready.reads)
                forwarded[id, default: []].append(contentsOf: ready.forwarded)
                lostLogs[id, default: []].append(contentsOf: ready.lostLogs)
                if let snapshot = ready.snapshot { snapshots[id] = snapshot }
                released[id, default: []].append(contentsOf: ready.released)
                for message in ready.messages + ready.messagesAfterPersist { deliver(message) }
            }
        }
    }

    mutating func deliver(_ message: RaftMessage) {
        if case .snapshot = message.body { snapshotsSent[message.to, default: []].append(ticks) }
        sent[message.from, default: [:]][message.body.name, default: 0] += 1
        guard members[message.to] != nil, !cut.contains(message.from), !cut.contains(message.to),
            !dropped.contains(message.body.name)
        else { return }
        if case .appendResponse(accepted: false, _, _, _) = message.body {
            rejectedAppends[message.to, default: 0] += 1
        }
        members[message.to]!.step(message)
    }

    mutating func tick(_ times: Int = 1) {
        for _ in 0..<times {
            ticks += 1
            for id in members.keys.sorted() where !cut.contains(id) { members[id]!.tick() }
            settle()
        }
    }

    mutating func electLeader() -> String {
        for _ in 0..<100 {
            tick()
            if let leader = leader { return leader }
        }
        Issue.record("no leader elected")
        return ""
    }

    /// A member other than those named (the first in name order).
    func member(otherThan excluded: String...) -> String {
        members.keys.sorted().first { !excluded.contains($0) }!
    }

    var leader: String? {
        members.values.filter { $0.role == .leader && !cut.contains($0.id) }.max { $0.term < $1.term }?.id
    }

    func records(_ id: String) -> [String] {
        (applied[id] ?? []).filter { $0.kind == .record }.map { String(decoding: $0.payload, as: UTF8.self) }
    }
}

@Suite struct RaftTests {
    @Test func aSingleMemberLeadsAndCommitsWhatItPersists() throws {
        var cluster = TestCluster(["a"])
        #expect(cluster.electLeader() == "a")
        // It stood once (its pre-vote and vote win at once, with no one else to ask).
        #expect(cluster.members["a"]!.electionsStarted == 1)
        _ = try cluster.members["a"]!.propose([Array("x".utf8)])
        cluster.settle()
        #expect(cluster.records("a") == ["x"])
    }

    @Test func threeMembersElectOneLeaderAndReplicate() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        #expect(cluster.members.values.filter { $0.role == .leader }.count == 1)
        for i in 0..<20 { _ = try cluster.members[leader]!.propose([Array("w\(i)".utf8)]) }
        cluster.settle()
        cluster.tick()
        for id in ["a", "b", "c"] {
            #expect(cluster.records(id) == (0..<20).map { "w\($0)" }, "member \(id)")
        }
        // A follower refuses proposals and names the leader.
        let follower = cluster.member(otherThan: leader)
        #expect(throws: ReplicationError.self) { try cluster.members[follower]!.propose([[1]]) }
    }

    @Test func aCommitIndexThatMovesAloneCostsNoSyncedWrite() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let follower = cluster.member(otherThan: leader)
        _ = try cluster.members[leader]!.propose([Array("x".utf8)])
        cluster.settle()
        cluster.tick(5)  // heartbeats carry the commit index to the followers
        #expect(cluster.records(follower) == ["x"])
        // No hard state was written for a commit index alone: every write without entries
        // changed the term or the vote.
        for (id, writes) in cluster.hardStateWrites {
            var previous = HardState(term: 1)
            for write in writes {
                if write.entries == 0 {
                    #expect(write.hardState.term != previous.term || write.hardState.vote != previous.vote, "\(id)")
                }
                previous = write.hardState
            }
        }
        // The commit index rides along with the next entries the follower writes.
        let committedX = cluster.members[follower]!.committed
        _ = try cluster.members[leader]!.propose([Array("y".utf8)])
        cluster.settle()
        let last = try #require(cluster.hardStateWrites[follower]?.last)
        #expect(last.entries > 0 && last.hardState.commit >= committedX)
    }

    @Test func aTickLeavesWorkOnlyWhenAHeartbeatOrACampaignIsDue() throws {
        let configuration = RaftConfiguration(electionTicks: 10, heartbeatTicks: 3)
        var cluster = TestCluster(["a", "b", "c"], configuration: configuration)
        let leader = cluster.electLeader()
        cluster.settle()
        for id in cluster.members.keys.sorted() { #expect(!cluster.members[id]!.hasPendingReady, "\(id)") }
        // The leader: one tick in three leaves heartbeats; the others leave nothing to take.
        var ticksWithWork = 0
        for _ in 0..<9 {
            cluster.members[leader]!.tick()
            guard cluster.members[leader]!.hasPendingReady else { continue }
            ticksWithWork += 1
            let ready = cluster.members[leader]!.takeReady()
            #expect(ready.messages.count == 2)
            #expect(ready.messages.allSatisfy { if case .heartbeat = $0.body { true } else { false } })
        }
        #expect(ticksWithWork == 3)
        // A follower that hears nothing has nothing to do until its election timeout; then it campaigns.
        let follower = cluster.member(otherThan: leader)
        var ticks = 0
        while !cluster.members[follower]!.hasPendingReady, ticks < 100 {
            cluster.members[follower]!.tick()
            ticks += 1
        }
        #expect(ticks >= configuration.electionTicks && ticks < 2 * configuration.electionTicks)
        #expect(!cluster.members[follower]!.takeReady().messages.isEmpty)
    }

    @Test func aConflictingFollowerIsRepairedQuickly() throws {
        var cluster = TestCluster(["a", "b", "c", "d", "e"])
        let first = cluster.electLeader()
        // Cut the leader off: it accepts entries no one else sees.
        cluster.cut = [first]
        for i in 0..<50 { _ = try cluster.members[first]!.propose([Array("lost\(i)".utf8)]) }
        cluster.settle()
        let second = cluster.electLeader()
        #expect(second != first)
        for i in 0..<5 { _ = try cluster.members[second]!.propose([Array("kept\(i)".utf8)]) }
        cluster.settle()
        // A third leader, elected while the second is away too: its log holds the second's
        // entries, so its first append to the old leader lands deep in the conflict.
        cluster.cut = [first, second]
        let third = cluster.electLeader()
        #expect(third != first && third != second)
        // Heal the old leader: its 50 uncommitted entries are replaced in a round trip or two, the
        // refusal's hint skipping its whole conflicting term rather than one entry per round trip.
        cluster.cut = [second]
        cluster.rejectedAppends = [:]
        cluster.tick(3)
        #expect(cluster.rejectedAppends[third, default: 0] == 1, "\(cluster.rejectedAppends)")
        #expect(cluster.records(first) == (0..<5).map { "kept\($0)" })
        #expect(cluster.members[first]!.role == .follower)
        #expect(cluster.members[first]!.lastIndex == cluster.members[third]!.lastIndex)
        // Conflicting entries are not lost ones: nothing the leader counted was missing.
        #expect(cluster.lostLogs.values.allSatisfy { $0.isEmpty }, "\(cluster.lostLogs)")
    }

    @Test("a follower that lost entries it acknowledged is reported by the leader, and one only behind is not")
    func aFollowerThatLostItsLogIsReported() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let follower = cluster.member(otherThan: leader)
        for i in 0..<20 { _ = try cluster.members[leader]!.propose([Array("e\(i)".utf8)]) }
        cluster.settle()
        let acknowledged = cluster.members[follower]!.lastIndex
        // Only behind: cut off while the leader goes on, then back. It catches up, unreported.
        cluster.cut = [follower]
        for i in 0..<5 { _ = try cluster.members[leader]!.propose([Array("f\(i)".utf8)]) }
        cluster.tick(5)
        cluster.cut = []
        cluster.tick(10)
        #expect(cluster.members[follower]!.lastIndex == cluster.members[leader]!.lastIndex)
        #expect(cluster.lostLogs.values.allSatisfy { $0.isEmpty }, "\(cluster.lostLogs)")
        // Lost: the member starts again from its first entry, as on an empty data directory.
        let caughtUp = cluster.members[follower]!.lastIndex
        let first = cluster.members[leader]!.log.entries(from: 1, maxCount: 1, maxBytes: .max)
        cluster.members[follower] = Raft(
            id: follower, seed: 7, hardState: HardState(term: 1),
            snapshot: RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership()), entries: first)
        // Heartbeats alone do not find it out (they carry no log position); the next writes do.
        cluster.tick(5)
        #expect(cluster.lostLogs.values.allSatisfy { $0.isEmpty })
        cluster.rejectedAppends = [:]
        for i in 0..<3 { _ = try cluster.members[leader]!.propose([Array("g\(i)".utf8)]) }
        cluster.tick(20)
        // Probed once a heartbeat, not refused and resent at network speed (that was thousands a tick).
        #expect(cluster.rejectedAppends[leader, default: 0] <= 25, "\(cluster.rejectedAppends)")
        let reports = cluster.lostLogs[leader] ?? []
        #expect(!reports.isEmpty)
        #expect(
            reports.allSatisfy { $0 == RaftLostLog(peer: follower, acknowledged: caughtUp, lastIndex: 1) }, "\(reports)"
        )
        #expect(caughtUp > acknowledged && cluster.members[follower]!.lastIndex == 1)
        // The leader's status says so, with where the member's log ends (its lag in
        // `dwcp cluster status` is counted from there, not from what it acknowledged).
        #expect(cluster.members[leader]!.status.lostLogs == [follower: 1])
        #expect(cluster.members[leader]!.status.matches[follower] == caughtUp)
        // Only the refusal of the append outstanding counts: a stale one changes nothing, and
        // none interrupts a snapshot on its way.
        let before = cluster.members[leader]!.progress[follower]!
        let term = cluster.members[leader]!.term
        func refusal(at index: UInt64) -> RaftMessage {
            RaftMessage(
                from: follower, to: leader, term: term,
                body: .appendResponse(accepted: false, index: index, hintIndex: 1, hintTerm: 1))
        }
        cluster.members[leader]!.step(refusal(at: before.next + 5))
        #expect(cluster.members[leader]!.progress[follower]!.refusalsBelowMatch == before.refusalsBelowMatch)
        cluster.members[leader]!.progress[follower]!.state = .snapshot(index: caughtUp + 3)
        cluster.members[leader]!.step(refusal(at: caughtUp))
        #expect(cluster.members[leader]!.progress[follower]!.state == .snapshot(index: caughtUp + 3))
        // Neither the heartbeats nor those of a linearizable read tell it entries are committed
        // that its log may hold others at; the member that holds them is told.
        let other = cluster.member(otherThan: leader, follower)
        _ = cluster.members[leader]!.takeReady()
        cluster.members[leader]!.readIndex(context: 99)
        let heartbeats = cluster.members[leader]!.takeReady().messages.compactMap { message -> (String, UInt64)? in
            guard case .heartbeat(let commit, let context) = message.body, context > 0 else { return nil }
            return (message.to, commit)
        }
        #expect(heartbeats.count == 2, "\(heartbeats)")
        #expect(heartbeats.first { $0.0 == follower }?.1 == 0, "\(heartbeats)")
        #expect(heartbeats.first { $0.0 == other }?.1 == cluster.members[leader]!.log.committed, "\(heartbeats)")
    }

    @Test(
        "a leader sends a follower at most maxInflightAppends appends of at most maxEntriesPerAppend entries before it answers, beside its own write of them, and commits only what it has persisted itself"
    )
    func appendsArePipelinedWithinTheirLimits() throws {
        var configuration = RaftConfiguration()
        configuration.maxInflightAppends = 2
        configuration.maxEntriesPerAppend = 4
        var cluster = TestCluster(["a", "b", "c"], configuration: configuration)
        let leader = cluster.electLeader()
        let near = cluster.member(otherThan: leader)
        let far = cluster.member(otherThan: leader, near)
        let before = cluster.members[leader]!.lastIndex
        for i in 0..<10 { _ = try cluster.members[leader]!.propose([Array("p\(i)".utf8)]) }
        var ready = cluster.members[leader]!.takeReady()
        // The leader's write of the ten entries and the appends leave in the same ready.
        #expect(ready.entries.map(\.index) == Array((before + 1)...(before + 10)))
        func appendSizes(_ ready: RaftReady, to follower: String) -> [Int] {
            ready.messages.compactMap { message in
                guard message.to == follower, case .append(_, _, let entries, _) = message.body else { return nil }
                return entries.count
            }
        }
        #expect(appendSizes(ready, to: near) == [4, 4])
        #expect(appendSizes(ready, to: far) == [4, 4])
        // `far` is away; `near` takes both appends and answers. The leader has not persisted its
        // own write yet, so one follower's acknowledgement is no majority.
        for message in ready.messages where message.to == near { cluster.members[near]!.step(message) }
        let answer = cluster.members[near]!.takeReady()
        cluster.members[near]!.persisted(through: answer.entries.last!.index, term: answer.entries.last!.term)
        for message in answer.messages + answer.messagesAfterPersist where message.to == leader {
            cluster.members[leader]!.step(message)
        }
        #expect(cluster.members[leader]!.committed == before)
        // Answered, the leader sends `near` the rest; once its own write is done, what both hold commits.
        ready = cluster.members[leader]!.takeReady()
        #expect(appendSizes(ready, to: near) == [2])
        cluster.members[leader]!.persisted(through: before + 10, term: cluster.members[leader]!.term)
        #expect(cluster.members[leader]!.committed == before + 8)
    }

    @Test func preVoteKeepsAReturningMemberFromDisruptingTheLeader() {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let term = cluster.members[leader]!.term
        let loner = cluster.member(otherThan: leader)
        cluster.cut = [loner]
        for _ in 0..<200 { cluster.members[loner]!.tick() }
        _ = cluster.members[loner]!.takeReady()
        // Its pre-votes went nowhere, so its term did not grow, and it started no election.
        #expect(cluster.members[loner]!.term == term)
        #expect(cluster.members[loner]!.electionsStarted == 0)
        cluster.cut = []
        cluster.tick(5)
        #expect(cluster.leader == leader)
        #expect(cluster.members[leader]!.term == term)
    }

    @Test func aLeaderThatLosesItsMajorityStepsDown() {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        // The leader hears no one (its outgoing messages are dropped too).
        cluster.cut = [leader]
        for _ in 0..<30 {
            cluster.members[leader]!.tick()
            _ = cluster.members[leader]!.takeReady()
        }
        #expect(cluster.members[leader]!.role != .leader)
    }

    @Test func leadershipMovesToTheChosenMember() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let target = cluster.member(otherThan: leader)
        let started = cluster.members[target]!.electionsStarted
        try cluster.members[leader]!.transferLeadership(to: target)
        cluster.settle()
        #expect(cluster.leader == target)
        #expect(cluster.members[leader]!.role == .follower)
        // Handed the leadership, the target stood as a candidate at once (no pre-vote).
        #expect(cluster.members[target]!.electionsStarted == started + 1)
    }

    @Test("the successor a stopping leader hands over to: heard from lately, then the longest log, then by id")
    func theSuccessorIsTheVoterBestPlacedToLead() throws {
        var single = TestCluster(["a"])
        _ = single.electLeader()
        #expect(single.members["a"]!.successor == nil)

        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let first = cluster.member(otherThan: leader)
        let second = cluster.member(otherThan: leader, first)
        #expect(cluster.members[first]!.successor == nil, "a follower names none")
        #expect(cluster.members[leader]!.successor == first, "all alike: the first by id")
        // The first misses an entry: the other has the longer log.
        cluster.cut = [first]
        _ = try cluster.members[leader]!.propose([Array("x".utf8)])
        cluster.settle()
        #expect(cluster.members[leader]!.successor == second)
        // Both caught up: alike again.
        cluster.cut = []
        cluster.tick(2)
        #expect(cluster.members[leader]!.status.matches[first] == cluster.members[leader]!.status.matches[second])
        #expect(cluster.members[leader]!.successor == first)
        // The first silent for half an election timeout: not a successor, whatever its log.
        cluster.cut = [first]
        cluster.tick(5)
        #expect(cluster.members[leader]!.role == .leader)
        #expect(cluster.members[leader]!.successor == second)
        // Neither answers: none (a hand-off could not finish).
        cluster.cut = [first, second]
        for _ in 0..<5 {
            cluster.members[leader]!.tick()
            _ = cluster.members[leader]!.takeReady()
        }
        #expect(cluster.members[leader]!.successor == nil)
    }

    @Test("a transfer to a voter silent for an election timeout is refused at once, and proposals go on")
    func aTransferToASilentVoterIsRefused() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let target = cluster.member(otherThan: leader)
        cluster.cut = [target]
        cluster.tick(RaftConfiguration().electionTicks + 1)
        #expect(cluster.leader == leader)
        #expect {
            try cluster.members[leader]!.transferLeadership(to: target)
        } throws: { "\($0)".contains("\(target) has not answered for an election timeout: it cannot take over now") }
        #expect(cluster.members[leader]!.transferee == nil)
        _ = try cluster.members[leader]!.propose([Array("x".utf8)])
        // Right after an election, a voter the new leader has not heard from yet may take over.
        var fresh = TestCluster(["a", "b", "c"])
        let elected = fresh.electLeader()
        let other = fresh.member(otherThan: elected)
        fresh.members[elected]!.progress[other]!.silentTicks = .max
        fresh.members[elected]!.leadingTicks = 0
        try fresh.members[elected]!.transferLeadership(to: other)
        #expect(fresh.members[elected]!.transferee == other)
    }

    @Test("a transfer to the leader itself calls off the one in flight: it proposes again at once")
    func aTransferToItselfCallsOffTheTransfer() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let target = cluster.member(otherThan: leader)
        cluster.cut = [target]
        try cluster.members[leader]!.transferLeadership(to: target)
        #expect(throws: ReplicationError.self) { try cluster.members[leader]!.propose([Array("x".utf8)]) }
        try cluster.members[leader]!.transferLeadership(to: leader)
        _ = try cluster.members[leader]!.propose([Array("y".utf8)])
    }

    @Test func aMemberFarBehindCatchesUpBySnapshot() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let behind = cluster.member(otherThan: leader)
        cluster.cut = [behind]
        for i in 0..<100 { _ = try cluster.members[leader]!.propose([Array("e\(i)".utf8)]) }
        cluster.settle()
        for id in ["a", "b", "c"] where id != behind {
            let applied = cluster.members[id]!.applied
            let dropped = cluster.members[id]!.compact(through: applied)
            // The dropped entries come back for the driver to free outside its lock.
            #expect(dropped.contains { $0.index == applied } && cluster.members[id]!.snapshotMeta.index == applied)
        }
        let heldBehind = cluster.members[behind]!.lastIndex
        cluster.cut = []
        // The leader notices within a few heartbeats that the appends it pipelined were lost.
        cluster.tick(10)
        #expect(cluster.snapshots[behind] != nil)
        // The log the snapshot replaced comes back for the driver to free outside its lock.
        #expect(cluster.released[behind]?.map(\.index) == Array(1...heldBehind))
        #expect(cluster.members[behind]!.committed == cluster.members[leader]!.committed)
        #expect(cluster.members[behind]!.lastIndex == cluster.members[leader]!.lastIndex)
    }

    @Test(
        "a snapshot the member does not catch up from is sent again after twice the wait each time, up to 32 times, and the wait starts over once it catches up"
    )
    func snapshotResendsBackOff() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let election = RaftConfiguration().electionTicks
        let leader = cluster.electLeader()
        let behind = cluster.member(otherThan: leader)
        func fallBehind() throws {
            cluster.cut = [behind]
            for i in 0..<20 { _ = try cluster.members[leader]!.propose([Array("e\(i)".utf8)]) }
            cluster.settle()
            for id in ["a", "b", "c"] where id != behind {
                _ = cluster.members[id]!.compact(through: cluster.members[id]!.applied)
            }
            cluster.cut = []
        }
        try fallBehind()
        // Every snapshot is lost (as one the member refuses is).
        cluster.dropped = ["snapshot"]
        cluster.tick(2 * election * (1 + 2 + 4 + 8 + 16 + 32 + 32) + 5)
        let sent = cluster.snapshotsSent[behind] ?? []
        let waits = zip(sent.dropFirst(), sent).map { $0 - $1 }
        #expect(waits == [1, 2, 4, 8, 16, 32, 32].map { 2 * election * $0 }, "sent at ticks \(sent)")

        // Once one arrives, the member catches up, and the next time it needs one the wait is
        // two election timeouts again.
        cluster.dropped = []
        cluster.tick(2 * election * 32 + 5)
        #expect(cluster.members[behind]!.committed == cluster.members[leader]!.committed)
        try fallBehind()
        cluster.dropped = ["snapshot"]
        cluster.snapshotsSent = [:]
        cluster.tick(2 * election * 3 + 5)
        let again = cluster.snapshotsSent[behind] ?? []
        #expect(
            zip(again.dropFirst(), again).map { $0 - $1 } == [2 * election, 4 * election], "sent at ticks \(again)")
    }

    @Test func membersJoinAsLearnersArePromotedAndRemoved() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        cluster.join("d")
        // An address that would read back as two members (or as a malformed line) is refused.
        for address in ["h:1\nv zz h:2", "h 1:2"] {
            #expect(throws: ReplicationError.self) {
                try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: address))
            }
        }
        // Nor one that is another member's.
        #expect {
            try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-a"))
        } throws: { "\($0)".contains("addr-a is a's replication address already") }
        _ = try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-d"))
        // One change at a time.
        #expect(throws: ReplicationError.self) {
            try cluster.members[leader]!.proposeMembership(.promote(id: "d"))
        }
        cluster.settle()
        cluster.tick()
        #expect(cluster.members["d"]!.membership.learners["d"] == "addr-d")
        #expect(cluster.members["d"]!.lastIndex == cluster.members[leader]!.lastIndex)
        _ = try cluster.members[leader]!.proposeMembership(.promote(id: "d"))
        cluster.tick(2)
        #expect(cluster.members[leader]!.membership.voters.count == 4)
        let removed = cluster.member(otherThan: leader)
        _ = try cluster.members[leader]!.proposeMembership(.remove(id: removed))
        cluster.tick(2)
        #expect(
            cluster.members[leader]!.membership.voters.keys.sorted() == ["a", "b", "c", "d"].filter { $0 != removed })
        #expect(throws: ReplicationError.self) {
            try cluster.members[leader]!.proposeMembership(.remove(id: removed))
        }
    }

    @Test("a learner is promoted only once it answers and is within promotionLag entries of the commit index")
    func onlyALearnerCaughtUpIsPromoted() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        cluster.join("d")
        _ = try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-d"))
        cluster.settle()
        cluster.tick()
        // Cut off while the others write more than the lag allows.
        cluster.cut = ["d"]
        for _ in 0..<(Raft.promotionLag / 100 + 1) {
            _ = try cluster.members[leader]!.propose((0..<100).map { Array("w\($0)".utf8) })
            cluster.settle()
        }
        cluster.tick(RaftConfiguration().electionTicks + 1)
        #expect {
            try cluster.members[leader]!.proposeMembership(.promote(id: "d"))
        } throws: { "\($0)".contains("d has not caught up (it has not answered for an election timeout)") }
        // Added again as a voter, it is promoted: the same check (and at the address it has).
        #expect {
            try cluster.members[leader]!.proposeMembership(.addVoter(id: "d", address: "addr-d"))
        } throws: { "\($0)".contains("d has not caught up (it has not answered for an election timeout)") }
        #expect {
            try cluster.members[leader]!.proposeMembership(.addVoter(id: "d", address: "addr-e"))
        } throws: { "\($0)".contains("d is a learner at addr-d, not addr-e") }
        // Back, it answers at once; promoted once it has caught up.
        cluster.cut = []
        cluster.tick()
        cluster.settle()
        cluster.tick()
        _ = try cluster.members[leader]!.proposeMembership(.addVoter(id: "d", address: "addr-d"))
        cluster.tick(2)
        #expect(cluster.members[leader]!.membership.voters.count == 4)
        #expect(cluster.members[leader]!.membership.voters["d"] == "addr-d")
    }

    @Test("a learner that never answered is not promoted right after a change of leader")
    func silentLearnerAfterAHandOver() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        // d is added but never runs.
        _ = try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-d"))
        cluster.settle()
        let next = cluster.member(otherThan: leader)
        try cluster.members[leader]!.transferLeadership(to: next)
        cluster.settle()
        #expect(cluster.leader == next)
        // Elected a moment ago, the new leader counted d's silence from its election only, and
        // d's match index of 0 was within the lag of a short log: it was promoted.
        #expect {
            try cluster.members[next]!.proposeMembership(.promote(id: "d"))
        } throws: { "\($0)".contains("d has not caught up (this leader has not heard from it yet)") }
        #expect(cluster.members[next]!.membership.learners["d"] == "addr-d")
    }

    /// Four members; the leader removes one while it is cut off (as a member being taken out
    /// often is: the removal commits without it), and `ticks` pass; the member is still cut off.
    static func removedWhileCutOff(ticks: Int) throws -> (TestCluster, leader: String, removed: String) {
        var cluster = TestCluster(["a", "b", "c", "d"])
        let leader = cluster.electLeader()
        let removed = cluster.member(otherThan: leader)
        cluster.cut = [removed]
        _ = try cluster.members[leader]!.proposeMembership(.remove(id: removed))
        cluster.tick(ticks)
        return (cluster, leader, removed)
    }

    @Test("a removed member is told: it gets the entries through its removal, and stops campaigning")
    func aRemovedMemberLearnsItIsOut() throws {
        var (cluster, leader, removed) = try Self.removedWhileCutOff(ticks: 2)
        #expect(!cluster.members[leader]!.membership.contains(removed))
        #expect(cluster.members[removed]!.membership.contains(removed))
        cluster.cut = []
        cluster.tick(5)
        #expect(!cluster.members[removed]!.membership.contains(removed))
        #expect(cluster.members[removed]!.lastIndex == cluster.members[leader]!.committed)
        // It no longer campaigns: its role stays follower and it starts no election.
        let elections = cluster.members[removed]!.electionsStarted
        for _ in 0..<200 {
            cluster.tick()
            #expect(cluster.members[removed]!.role == .follower)
        }
        #expect(cluster.members[removed]!.electionsStarted == elections)
        #expect(cluster.members[leader]!.departing.isEmpty)
    }

    @Test("a member removed while down for longer than the farewells is told when it campaigns again")
    func aRemovedMemberBackLateIsToldWhenItCampaigns() throws {
        var (cluster, leader, removed) = try Self.removedWhileCutOff(ticks: Raft.farewellHeartbeats + 20)
        #expect(cluster.members[leader]!.departing.isEmpty, "the farewells ran out")
        cluster.cut = []
        cluster.tick(60)
        #expect(!cluster.members[removed]!.membership.contains(removed))
        #expect(cluster.members[leader]!.role == .leader)
    }

    /// ``removedWhileCutOff(ticks:)`` long enough for the farewells to run out, then more
    /// entries, and every member still in the region compacts its log through them: the entries
    /// after the removed member's last one are gone.
    static func removedAndCompactedAway() throws -> (TestCluster, leader: String, removed: String) {
        var (cluster, leader, removed) = try Self.removedWhileCutOff(ticks: Raft.farewellHeartbeats + 20)
        for i in 0..<5 { _ = try cluster.members[leader]!.propose([Array("after-\(i)".utf8)]) }
        cluster.tick(2)
        for id in cluster.members.keys where id != removed {
            _ = cluster.members[id]!.compact(through: cluster.members[id]!.applied)
        }
        return (cluster, leader, removed)
    }

    @Test(
        "a removed member back after the leader compacted its removal away is told in one message, and stops campaigning"
    )
    func aRemovedMemberBackAfterCompactionIsToldItIsOut() throws {
        var (cluster, leader, removed) = try Self.removedAndCompactedAway()
        let term = cluster.members[leader]!.term
        cluster.cut = []
        cluster.tick(60)
        // Its own log cannot show the removal (nothing was sent to bring it there), but it knows.
        #expect(cluster.members[removed]!.membership.contains(removed))
        #expect(cluster.members[removed]!.isToldRemoved)
        #expect(cluster.members[removed]!.status.toldRemovedAt == cluster.members[leader]!.membershipIndex)
        #expect(cluster.members[removed]!.status.role(of: removed) == "not a member")
        #expect(cluster.snapshotsSent[removed] == nil)
        cluster.sent = [:]
        for _ in 0..<200 {
            cluster.tick()
            #expect(cluster.members[removed]!.role == .follower)
        }
        #expect(cluster.sent[removed] == nil, "it campaigns no more")
        #expect(cluster.members[leader]!.role == .leader && cluster.members[leader]!.term == term)

        // Restarted with the notice its driver kept: it knows from its start, and never campaigns.
        let before = cluster.members[removed]!
        for notice in [nil, before.removalNotice] {
            cluster.members[removed] = Raft(
                id: removed, seed: 77, hardState: HardState(term: before.term, vote: before.vote, commit: 0),
                snapshot: before.snapshotMeta, entries: before.log.entries, removalNotice: notice)
            #expect(cluster.members[removed]!.isToldRemoved == (notice != nil))
            cluster.sent = [:]
            // The others cut off (and stopped): no leader tells it again.
            cluster.cut = Set(cluster.members.keys.filter { $0 != removed })
            cluster.tick(200)
            let campaigned = cluster.sent[removed].map { !$0.isEmpty } ?? false
            #expect(
                campaigned == (notice == nil), "notice \(String(describing: notice)): \(cluster.sent[removed] ?? [:])")
        }
    }

    @Test("a removed member the farewells are still bringing up is told at the next heartbeat once the leader compacts")
    func farewellsCutShortByCompactionTellTheMember() throws {
        var (cluster, leader, removed) = try Self.removedWhileCutOff(ticks: 2)
        // It hears the leader again, but the entries through its removal never arrive.
        cluster.cut = []
        cluster.dropped = ["append"]
        cluster.tick(2)
        #expect(cluster.members[leader]!.departing[removed] != nil)
        for id in cluster.members.keys where id != removed {
            _ = cluster.members[id]!.compact(through: cluster.members[id]!.applied)
        }
        cluster.tick(2)
        #expect(cluster.members[leader]!.departing[removed] == nil)
        #expect(cluster.members[removed]!.isToldRemoved)
    }

    @Test("a membership that leaves a member out counts for it only once committed")
    func outsideOnlyOnceTheRemovalCommits() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        _ = try cluster.members[leader]!.proposeMembership(.remove(id: leader))
        // Appended, not yet committed: another leader could still replace it.
        #expect(!cluster.members[leader]!.membership.contains(leader))
        #expect(!cluster.members[leader]!.isOutsideCommittedMembership)
        cluster.settle()
        cluster.tick()
        #expect(cluster.members[leader]!.isOutsideCommittedMembership)
    }

    @Test("a member told it was removed is a member again once a later membership adds it back")
    func aMemberToldItWasRemovedCanBeAddedAgain() throws {
        var (cluster, leader, removed) = try Self.removedAndCompactedAway()
        cluster.cut = []
        cluster.tick(60)
        #expect(cluster.members[removed]!.isToldRemoved)
        let notice = try #require(cluster.members[removed]!.removalNotice)
        _ = try cluster.members[leader]!.proposeMembership(.addLearner(id: removed, address: "addr-\(removed)"))
        cluster.tick(20)
        #expect(cluster.members[removed]!.membership.learners[removed] != nil)
        #expect(!cluster.members[removed]!.isToldRemoved)
        #expect(cluster.members[removed]!.status.role(of: removed) == "learner")
        // Restarted with the notice it kept from before: the membership that added it again
        // supersedes it.
        let back = cluster.members[removed]!
        let restarted = Raft(
            id: removed, seed: 78, hardState: HardState(term: back.term, vote: back.vote, commit: back.log.committed),
            snapshot: back.snapshotMeta, entries: back.log.entries, removalNotice: notice)
        #expect(!restarted.isToldRemoved && restarted.membership.learners[removed] != nil)
        _ = try cluster.members[leader]!.proposeMembership(.promote(id: removed))
        cluster.tick(5)
        #expect(cluster.members[removed]!.membership.isVoter(removed))
        // It may lead again.
        try cluster.members[leader]!.transferLeadership(to: removed)
        cluster.tick(30)
        #expect(cluster.leader == removed)
    }

    @Test("a removed member of a later term does not unseat the leader, which tells it it was removed")
    func aRemovedMemberOfALaterTermDoesNotUnseatTheLeader() throws {
        var (cluster, leader, removed) = try Self.removedWhileCutOff(ticks: 3)
        let term = cluster.members[leader]!.term
        // As if it had run elections of its own while cut off.
        cluster.members[removed]!.term = term + 5
        cluster.cut = []
        cluster.tick(60)
        #expect(cluster.members[leader]!.role == .leader && cluster.members[leader]!.term == term)
        #expect(cluster.leader == leader)
        // The entries through its removal it would refuse (they come in an earlier term): it is
        // told it was removed instead.
        #expect(cluster.members[removed]!.isToldRemoved)
        #expect(cluster.members[removed]!.membership.contains(removed))
    }

    @Test(
        "a membership change whose voters could not form its majority is refused: a voter added that does not answer, a working voter removed while another is down"
    )
    func changesThatWouldStopTheGroupAreRefused() throws {
        // One voter: adding a second that cannot be reached would need both to commit anything.
        var single = TestCluster(["a"])
        #expect(single.electLeader() == "a")
        _ = try single.members["a"]!.propose([Array("x".utf8)])
        single.settle()
        #expect {
            try single.members["a"]!.proposeMembership(.addVoter(id: "b", address: "addr-b"))
        } throws: { error in
            "\(error)".contains("only 1 do (b does not)") && "\(error)".contains("as a learner")
        }
        // As a learner it goes in, and once it answers it is promoted.
        single.join("b")
        _ = try single.members["a"]!.proposeMembership(.addLearner(id: "b", address: "addr-b"))
        single.tick(3)
        _ = try single.members["a"]!.proposeMembership(.promote(id: "b"))
        single.tick(3)
        #expect(single.members["a"]!.membership.voters.keys.sorted() == ["a", "b"])

        // Three voters, one down: adding a fourth that does not answer yet, or removing a working
        // one, would leave fewer answering voters than the new majority.
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let down = cluster.member(otherThan: leader)
        let up = cluster.member(otherThan: leader, down)
        cluster.cut = [down]
        cluster.tick(RaftConfiguration().electionTicks + 1)
        #expect(cluster.members[leader]!.role == .leader)
        #expect(throws: ReplicationError.self) {
            try cluster.members[leader]!.proposeMembership(.addVoter(id: "d", address: "addr-d"))
        }
        #expect(throws: ReplicationError.self) { try cluster.members[leader]!.proposeMembership(.remove(id: up)) }
        // Removing the one that is down leaves two voters, both answering.
        _ = try cluster.members[leader]!.proposeMembership(.remove(id: down))
        cluster.tick(2)
        #expect(cluster.members[leader]!.membership.voters.count == 2)
    }

    @Test("a new leader proposes no membership change before it has committed an entry of its own term")
    func membershipChangesWaitForTheLeadersFirstCommit() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let first = cluster.electLeader()
        // The next leader is elected, but its followers' acknowledgements are lost: its no-op,
        // the first entry of its term, stays uncommitted.
        cluster.cut = [first]
        cluster.dropped = ["appendResponse"]
        var second: String?
        for _ in 0..<100 where second == nil {
            cluster.tick()
            second = cluster.leader.flatMap { $0 == first ? nil : $0 }
        }
        let leader = try #require(second)
        let raft = cluster.members[leader]!
        #expect(raft.committed < raft.lastIndex)
        #expect(throws: ReplicationError.self) {
            try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-d"))
        }
        // Once its no-op commits, the change is taken.
        cluster.dropped = []
        cluster.tick(2)
        #expect(cluster.leader == leader)
        _ = try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-d"))
    }

    @Test func aLearnerAddedToAQuietCompactedGroupCatchesUpBySnapshot() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        for i in 0..<20 { _ = try cluster.members[leader]!.propose([Array("e\(i)".utf8)]) }
        cluster.settle()
        for id in ["a", "b", "c"] { cluster.members[id]!.compact(through: cluster.members[id]!.applied) }
        cluster.join("d")
        // An address that would read back as two members (or as a malformed line) is refused.
        for address in ["h:1\nv zz h:2", "h 1:2"] {
            #expect(throws: ReplicationError.self) {
                try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: address))
            }
        }
        _ = try cluster.members[leader]!.proposeMembership(.addLearner(id: "d", address: "addr-d"))
        cluster.settle()
        // Nothing else is proposed: the heartbeats alone must bring the learner up to date.
        cluster.tick(10)
        #expect(cluster.snapshots["d"] != nil)
        #expect(cluster.members["d"]!.lastIndex == cluster.members[leader]!.lastIndex)
        #expect(cluster.members["d"]!.membership.learners["d"] == "addr-d")
    }

    @Test func readIndexNeedsAQuorumAndFollowersAskTheLeader() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let follower = cluster.member(otherThan: leader)
        _ = try cluster.members[leader]!.propose([Array("x".utf8)])
        cluster.settle()
        cluster.members[leader]!.readIndex(context: 7)
        cluster.members[follower]!.readIndex(context: 8)
        cluster.settle()
        let committed = cluster.members[leader]!.committed
        #expect(cluster.reads[leader] == [RaftReadState(context: 7, index: committed)])
        #expect(cluster.reads[follower] == [RaftReadState(context: 8, index: committed)])
        // A leader cut off from everyone cannot confirm a read.
        cluster.cut = Set(["b", "c", "a"].filter { $0 != leader })
        cluster.members[leader]!.readIndex(context: 9)
        cluster.settle()
        #expect(cluster.reads[leader]?.contains { $0.context == 9 } == false)
    }

    @Test func aLeaderSendsAMemberThatIsBackWhatItLacksAtOnce() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let away = cluster.member(otherThan: leader)
        cluster.cut = [away]
        for payload in ["x", "y", "z"] { _ = try cluster.members[leader]!.propose([Array(payload.utf8)]) }
        cluster.settle()
        #expect(cluster.records(cluster.member(otherThan: leader, away)) == ["x", "y", "z"])
        // Back, it hears nothing until the next heartbeat (no tick here) unless the leader is told.
        cluster.cut = []
        cluster.settle()
        #expect(cluster.records(away).isEmpty)
        cluster.members[away]!.peerIsBack(leader)  // only a leader acts on it
        cluster.settle()
        #expect(cluster.records(away).isEmpty)
        cluster.members[leader]!.peerIsBack(away)
        cluster.settle()
        #expect(cluster.records(away) == ["x", "y", "z"])
    }

    @Test("a forward sent again (no answer in time) is answered where the first went, not appended twice")
    func aRepeatedForwardIsAppendedOnce() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let follower = cluster.member(otherThan: leader)
        try cluster.members[follower]!.forward([Array("once".utf8)], id: 41)
        cluster.settle()
        try cluster.members[follower]!.forward([Array("once".utf8)], id: 41)
        cluster.settle()
        let answers = (cluster.forwarded[follower] ?? []).filter { $0.id == 41 }
        #expect(answers.count == 2 && answers[0].firstIndex != nil && answers[0].firstIndex == answers[1].firstIndex)
        #expect(cluster.records(leader).filter { $0 == "once" }.count == 1)
        // Another forward id, or the same id under a new leader's term, is a new proposal.
        try cluster.members[follower]!.forward([Array("once".utf8)], id: 42)
        cluster.settle()
        #expect(cluster.records(leader).filter { $0 == "once" }.count == 2)
    }

    @Test func followersForwardProposalsToTheLeader() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let follower = cluster.member(otherThan: leader)
        #expect(throws: ReplicationError.self) { try cluster.members[follower]!.propose([Array("x".utf8)]) }
        try cluster.members[follower]!.forward([Array("f1".utf8), Array("f2".utf8)], id: 5)
        cluster.settle()
        let answer = try #require(cluster.forwarded[follower]?.first)
        let first = try #require(answer.firstIndex)
        #expect(answer.id == 5 && answer.term == cluster.members[leader]!.term && answer.from == leader)
        // Where the leader said they landed, every member applied them, in its term.
        for id in ["a", "b", "c"] {
            let landed = cluster.applied[id]!.filter { $0.index >= first && $0.index <= first + 1 }
            #expect(landed.map { String(decoding: $0.payload, as: UTF8.self) } == ["f1", "f2"])
            #expect(landed.allSatisfy { $0.term == answer.term })
        }
        // A leader handing over refuses, and says so at once.
        let other = cluster.member(otherThan: leader, follower)
        cluster.cut = [other]
        try cluster.members[leader]!.transferLeadership(to: other)
        try cluster.members[follower]!.forward([Array("f3".utf8)], id: 6)
        cluster.settle()
        #expect(
            cluster.forwarded[follower]?.last
                == RaftForwardedProposal(id: 6, firstIndex: nil, term: answer.term, from: leader))
        #expect(!cluster.records(leader).contains("f3"))
        // A node that leads does not forward; one that knows no leader cannot.
        #expect(throws: ReplicationError.self) { try cluster.members[leader]!.forward([[1]], id: 7) }
        var lonely = TestCluster(["x", "y", "z"])
        #expect(throws: ReplicationError.self) { try lonely.members["x"]!.forward([[1]], id: 8) }
        lonely.settle()
    }

    @Test("a proposal forwarded by a node that is not a member is refused for good, and nothing is appended")
    func strangersCannotForward() throws {
        var cluster = TestCluster(["a", "b", "c"])
        let leader = cluster.electLeader()
        let before = cluster.members[leader]!.lastIndex
        let term = cluster.members[leader]!.term
        cluster.members[leader]!.step(
            RaftMessage(from: "zz", to: leader, term: term, body: .propose(id: 9, payloads: [Array("x".utf8)])))
        let ready = cluster.members[leader]!.takeReady()
        let answers = (ready.messages + ready.messagesAfterPersist).filter { $0.to == "zz" }
        #expect(answers.map(\.body) == [.proposeRefused(id: 9)])
        #expect(ready.entries.isEmpty && cluster.members[leader]!.lastIndex == before)
    }

    @Test func membershipPayloadsRoundTripAndRejectGarbage() throws {
        let membership = RaftMembership(voters: ["a": "h:1", "b": "h:2"], learners: ["c": "h:3"])
        #expect(try RaftMembership(decoding: membership.encoded()) == membership)
        #expect(throws: ReplicationError.self) { try RaftMembership(decoding: Array("x a".utf8)) }
    }

    @Test(
        "a member whose log's last membership leaves it out, with its own notice of that index, counts as told it was removed, whatever its commit index says"
    )
    func ownNoticeOfARemovalInTheLog() {
        let first = LogEntry(
            index: 1, term: 1, kind: .membership,
            payload: RaftMembership(voters: ["a": "h:1", "b": "h:2", "c": "h:3"]).encoded())
        let removal = LogEntry(
            index: 2, term: 1, kind: .membership, payload: RaftMembership(voters: ["a": "h:1", "b": "h:2"]).encoded())
        func member(notice: UInt64?, entries: [LogEntry] = [first, removal]) -> Raft {
            Raft(
                id: "c", seed: 1, hardState: HardState(term: 1, commit: 1),
                snapshot: RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership()), entries: entries,
                removalNotice: notice)
        }
        #expect(member(notice: 2).isToldRemoved)
        #expect(!member(notice: nil).isToldRemoved)
        // A notice of an index its log's membership is past, one that holds it again: superseded.
        let back = LogEntry(
            index: 3, term: 1, kind: .membership,
            payload: RaftMembership(voters: ["a": "h:1", "b": "h:2", "c": "h:3"]).encoded())
        #expect(!member(notice: 2, entries: [first, removal, back]).isToldRemoved)
        // At an index where its log's membership holds it: not removed.
        #expect(!member(notice: 1, entries: [first]).isToldRemoved)
    }

    @Test(
        "a leader tells members it has heard from in its term from those it has not (counted silent from its election, never answering)"
    )
    func memberSilencesSayWhatWasHeard() {
        var cluster = TestCluster(["a", "b", "c"])
        let first = cluster.electLeader()
        cluster.tick(3)
        let heard = cluster.members[first]!.memberSilences
        #expect(heard.count == 2 && heard.values.allSatisfy { $0.heardThisTerm }, "\(heard)")
        #expect(!cluster.members[first]!.votersUnheardThisTerm)
        // Leadership handed to the third while one member is cut off: the new leader has not
        // heard from that one in its term, however recently the old one had.
        let away = cluster.member(otherThan: first)
        let next = cluster.member(otherThan: first, away)
        cluster.cut = [away]
        try? cluster.members[first]!.transferLeadership(to: next)
        cluster.tick(3)
        #expect(cluster.leader == next)
        let silences = cluster.members[next]!.memberSilences
        #expect(silences[away]?.heardThisTerm == false && silences[first]?.heardThisTerm == true, "\(silences)")
        #expect(cluster.members[next]!.votersUnheardThisTerm)
        #expect(cluster.members[first]!.memberSilences.isEmpty)
    }

    @Test("promoting a voter or a stranger says which it is (both said 'is not a learner')")
    func promotionRefusals() throws {
        let membership = RaftMembership(voters: ["a": "h:1", "b": "h:2"], learners: ["c": "h:3"])
        func refusal(_ id: String) -> String? {
            do {
                _ = try RaftMembershipChange.promote(id: id).applied(to: membership)
                return nil
            } catch let error as ReplicationError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal("a") == "a is a voter already")
        #expect(refusal("z") == "z is not a member: add it as a learner first (add-member --learner)")
        #expect(refusal("c") == nil)
    }
}
