import Store
import TestSupport
import Testing

@testable import Node

/// Hosts whose host agent's member stops answering are reported not ready by the leader, and
/// ready again once it answers (``HostLiveness``, ``HostLivenessWatch``).
@Suite struct HostLivenessTests {
    typealias Host = HostLiveness.Host
    static let silentReason = "its host agent's member n2 has not answered the leader for 12 s"

    /// `sql`'s rows on `node` once they are `expected`, or as they are after 30 s.
    static func poll(_ node: Node, _ sql: String, until expected: String) async throws -> String {
        let end = ContinuousClock.now + .seconds(30)
        var seen = try await rows(node, sql)
        while seen != expected, ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(100))
            seen = try await rows(node, sql)
        }
        return seen
    }

    @Test(
        "a host is reported not ready once its agent's member is silent 10 s, and ready once it has answered 3 s; hosts without an agent never"
    )
    func decisions() {
        let hosts = [
            Host(name: "h1", state: "ready", reason: "", agent: "n1"),
            Host(name: "h2", state: "ready", reason: "", agent: "n2"),
            Host(name: "h3", state: "ready", reason: "", agent: ""),
            Host(name: "h4", state: "ready", reason: "", agent: "n9"),
        ]
        func members(_ silence: Duration) -> (String) -> HostLiveness.Member {
            { member in
                switch member {
                case "n1": .answering
                case "n2": .silent(silence)
                default: .unknown
                }
            }
        }
        func reports(_ hosts: [Host], _ member: (String) -> HostLiveness.Member) -> [HostStateReported] {
            var liveness = HostLiveness()
            return liveness.reports(hosts: hosts, member: member, at: .now)
        }
        // n2 silent 9 s: not yet; n9 is no member: at once; h3 has no agent.
        #expect(
            reports(hosts, members(.seconds(9)))
                == [
                    HostStateReported(
                        name: "h4", state: "not_ready",
                        reason: "its host agent's member n9 is not a member of the region")
                ])
        #expect(
            reports(Array(hosts.prefix(3)), members(.seconds(12)))
                == [HostStateReported(name: "h2", state: "not_ready", reason: Self.silentReason)])
        // Not ready already: a longer silence writes nothing.
        let down = Host(name: "h2", state: "not_ready", reason: Self.silentReason, agent: "n2")
        #expect(reports([down], members(.seconds(60))).isEmpty)
        // Answering again: ready once it has answered for 3 s, looked at over and over (a link
        // that comes and goes writes nothing meanwhile); silent in between, it starts again.
        var liveness = HostLiveness()
        let start = ContinuousClock.now
        #expect(liveness.reports(hosts: [down], member: { _ in .answering }, at: start).isEmpty)
        #expect(liveness.reports(hosts: [down], member: { _ in .answering }, at: start + .seconds(2)).isEmpty)
        #expect(liveness.reports(hosts: [down], member: members(.seconds(1)), at: start + .seconds(2.5)).isEmpty)
        #expect(liveness.reports(hosts: [down], member: { _ in .answering }, at: start + .seconds(4)).isEmpty)
        #expect(
            liveness.reports(hosts: [down], member: { _ in .answering }, at: start + .seconds(7))
                == [HostStateReported(name: "h2", state: "ready")])
        // Removed from the region while silent: the reason changes, once.
        let removed = reports([down], { _ in .unknown })
        #expect(removed.map(\.reason) == ["its host agent's member n2 is not a member of the region"])
        let gone = Host(name: "h2", state: "not_ready", reason: removed[0].reason, agent: "n2")
        #expect(reports([gone], { _ in .unknown }).isEmpty)
        // Added again but silent: said so, not that it is no member.
        #expect(reports([gone], members(.seconds(12))).map(\.reason) == [Self.silentReason])
        // Not ready for a reason of another kind (its member runs another host now): left alone.
        let other = Host(
            name: "h2", state: "not_ready", reason: "its host agent's member n2 runs host h9 now", agent: "n2")
        #expect(reports([other], { _ in .answering }).isEmpty)
        #expect(reports([other], members(.seconds(60))).isEmpty)
        // A member that answers but lost its log runs no VMs: not ready at once (its VMs showed
        // running and an evacuation was refused), ready again once it answers with a log.
        let lost = reports([hosts[1]], { _ in .lostLog })
        #expect(lost.map(\.state) == ["not_ready"])
        #expect(lost.first?.reason.hasPrefix("its host agent's member n2 lost its log") == true, "\(lost)")
        let lostHost = Host(name: "h2", state: "not_ready", reason: lost[0].reason, agent: "n2")
        #expect(reports([lostHost], { _ in .lostLog }).isEmpty)
        var back = HostLiveness()
        #expect(back.reports(hosts: [lostHost], member: { _ in .answering }, at: start).isEmpty)
        #expect(
            back.reports(hosts: [lostHost], member: { _ in .answering }, at: start + .seconds(4))
                == [HostStateReported(name: "h2", state: "ready")])
    }

    @Test("a node's own agent host is claimed for it as it registers (ready, agent n1)")
    func claim() async throws {
        let dir = TemporaryDirectory()
        let registration = HostRegistration(name: "h1", cpus: 4, memoryBytes: 8 << 30)
        try await withRunningNode(dir, register: registration) { node in
            let claimed = try await Self.poll(node, "SELECT state, agent FROM hosts", until: #"[["ready","n1"]]"#)
            #expect(claimed == #"[["ready","n1"]]"#)
        }
    }

    @Test(
        "a node started again under another host name claims that one and reports the one it ran before not ready (an agent runs one host)"
    )
    func anotherHostName() async throws {
        let dir = TemporaryDirectory()
        for name in ["h1", "h2"] {
            let registration = HostRegistration(name: name, cpus: 4, memoryBytes: 8 << 30)
            try await withRunningNode(dir, register: registration) { node in
                let expected =
                    name == "h1"
                    ? #"[["h1","ready","n1",""]]"#
                    : #"[["h1","not_ready","n1","its host agent's member n1 runs host h2 now (its node was started with another --host-name)"],["h2","ready","n1",""]]"#
                let seen = try await Self.poll(
                    node, "SELECT name, state, agent, state_reason FROM hosts ORDER BY name", until: expected)
                #expect(seen == expected)
            }
        }
    }

    @Test(
        "in a region, the leader reports a host whose agent is no member not ready, and one whose member answers ready again"
    )
    func leaderReports() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let leading = try leader(of: nodes)
            _ = try await leading.submit(.addHost(HostAdded(name: "h1", region: "eu", cpus: 4, memoryBytes: 8 << 30)))
            let claim = Record(
                at: Node.now(), .hostStateReported(HostStateReported(name: "h1", state: "ready", agent: "n9")))
            _ = try await leading.consensus.propose([claim.encoded()])
            let notReady = #"[["not_ready","its host agent's member n9 is not a member of the region"]]"#
            #expect(try await Self.poll(leading, "SELECT state, state_reason FROM hosts", until: notReady) == notReady)
            // Placement passes it over, and says why.
            _ = try await leading.submit(
                .createVM(
                    VMCreated(
                        name: "v", region: "eu", cpus: 1, memoryBytes: 64 << 20, image: "builtin:hello", labels: [:],
                        desiredState: .running)))
            let waiting = try await Self.poll(
                leading, "SELECT actual_state, reason LIKE '%1 not ready%' FROM vms", until: #"[["unschedulable",1]]"#)
            #expect(waiting == #"[["unschedulable",1]]"#)
            // Reported not ready for a member that answers (it did not, a moment ago): the leader
            // makes it ready again.
            let back = Record(
                at: Node.now(),
                .hostStateReported(
                    HostStateReported(
                        name: "h1", state: "not_ready",
                        reason: "its host agent's member n2 has not answered the leader for 10 s", agent: "n2")))
            _ = try await leading.consensus.propose([back.encoded()])
            let ready = #"[["ready","","n2"]]"#
            #expect(try await Self.poll(leading, "SELECT state, state_reason, agent FROM hosts", until: ready) == ready)
            // Ready again, it takes the VM that waited.
            let placed = try await Self.poll(leading, "SELECT host FROM vms", until: #"[["h1"]]"#)
            #expect(placed == #"[["h1"]]"#)
        }
    }
}

/// `dwcp serve --election-timeout`: the ticks, and a wait for a leader that outlasts an election.
@Suite struct ElectionTimeoutTests {
    @Test("an election timeout sets the election ticks, and the wait for a leader to three of them, at least 2 s")
    func waitsScale() {
        var configuration = ReplicationConfiguration(listenHost: "127.0.0.1", listenPort: 1, peers: [:])
        #expect(configuration.leaderAnswerTimeout == .seconds(2))
        configuration.setElectionTimeout(.milliseconds(300))
        #expect(configuration.raft.electionTicks == 30 && configuration.leaderAnswerTimeout == .seconds(2))
        configuration.setElectionTimeout(.milliseconds(3000))
        #expect(configuration.raft.electionTicks == 300 && configuration.leaderAnswerTimeout == .seconds(9))
    }
}
