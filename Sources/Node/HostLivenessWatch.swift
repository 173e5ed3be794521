import GRDB
import Logging
import NIOCore
import NIOPosix
import Replication
import Store

/// Every second, on every member: a member whose host agent runs a host claims it
/// (`host.state_reported`, ready, with its id) when the views name no live agent for it, and
/// reports the hosts it claimed before under other names not ready (it runs one host); and the
/// leader reports hosts whose agent's member stopped answering, or answers again
/// (``HostLiveness``). The first claim in a region goes out once every member's views can apply
/// such records (schema 011); later ones, and the leader's reports, do not ask again: a claim in
/// the views shows the region passed that check. The leader's reports go out only while it leads
/// in the term it looked in. The next look waits until what went out has applied here.
struct HostLivenessWatch: Sendable {
    static let checkEvery: Duration = .seconds(1)

    func run(node: Node) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // Not before the views' values are known to be ones the applier writes (as the scheduler).
        _ = try await node.snapshots.viewsChecked.wait(until: 1)
        var liveness = HostLiveness()
        var leadingTerm: UInt64?
        var heldBackBy: MembersHoldBack?
        var sharedHostLogged: String?  // (the other member)
        while true {
            try await loop.sleep(for: Self.checkEvery)
            let look: HostLook
            do {
                look = try node.lookAtHosts()
            } catch {
                // (The views could not be read: said by whatever else reads them.)
                continue
            }
            if let shared = look.sharedWith, shared.member != sharedHostLogged {
                node.logger.error(
                    "host \(shared.host) is claimed by the host agent of member \(shared.member), which answers, and this member, \(node.configuration.nodeID), runs one under that name too: two members run one host name (give each its own --host-name)"
                )
            }
            sharedHostLogged = look.sharedWith?.member
            // What a leader remembers of its members goes with its term.
            if look.leaderTerm != leadingTerm { liveness = HostLiveness() }
            leadingTerm = look.leaderTerm
            let reports =
                look.leaderTerm.map { _ in
                    liveness.reports(hosts: look.hosts, member: look.member, at: .now)
                } ?? []
            if !look.own.isEmpty {
                // (Looked at only when there is something to claim: a scan of the hosts.)
                let anyClaimed = try? node.views.read { db in
                    try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM hosts WHERE agent != '')")
                }
                if anyClaimed != true {
                    let reason = await node.memberWhoseViewsLack("host.state_reported") {
                        ViewStore.knowsHostState(schemaVersion: $0)
                    }
                    if let reason, reason != heldBackBy {
                        node.logger.notice(
                            "this node's host agent claims its host once every member's views can apply host.state_reported records: \(reason)"
                        )
                    }
                    heldBackBy = reason
                    if reason != nil { continue }
                }
                await Self.propose(look.own, node: node) {
                    try await node.consensus.propose($0)
                }
            }
            if let term = look.leaderTerm, let raft = node.raft, !reports.isEmpty {
                await Self.propose(reports, node: node) {
                    try await raft.proposeAsLeader($0, inTerm: term)
                }
            }
        }
    }

    /// Proposes `reports` with `proposing`, waits until they applied here, and logs them; a
    /// failure is logged, and the next look tries again.
    static func propose(
        _ reports: [HostStateReported], node: Node, _ proposing: ([[UInt8]]) async throws -> ClosedRange<UInt64>
    ) async {
        do {
            let range = try await proposing(reports.map { Record(at: Node.now(), .hostStateReported($0)).encoded() })
            _ = try await node.applied.wait(until: range.upperBound)
            for report in reports { log(report, node: node) }
        } catch {
            // Leadership moved (the next leader looks again), or no quorum: the next round.
            if !Task.isCancelled { node.logger.info("hosts' states were not reported: \(error); trying again") }
        }
    }

    static func log(_ report: HostStateReported, node: Node) {
        if report.state == "ready" {
            let claimed = report.agent.isEmpty ? "" : " (its host agent runs on \(report.agent))"
            node.logger.notice("host \(report.name) is ready\(claimed)")
        } else {
            node.logger.warning(
                "host \(report.name) is not ready: \(report.reason); no VM is placed on it, and its VMs' states are the last it reported"
            )
        }
    }
}

/// What ``HostLivenessWatch`` saw in one look.
struct HostLook {
    /// This node's claim of its agent's host, and reports of hosts it claimed before that it no
    /// longer runs.
    var own: [HostStateReported] = []
    /// The host this node's agent runs and the member whose live agent the views name for it,
    /// when that is another member.
    var sharedWith: (host: String, member: String)?
    /// On the leader: the term it leads in, the hosts with an agent, and what it knows of each member.
    var leaderTerm: UInt64?
    var hosts: [HostLiveness.Host] = []
    var member: (String) -> HostLiveness.Member = { _ in .unknown }
}

extension Node {
    /// One look for ``HostLivenessWatch``: this node's own claims, and on the leader what
    /// ``HostLiveness`` needs.
    func lookAtHosts() throws -> HostLook {
        var look = HostLook()
        let mine = agentHost.withLock { $0 }
        let me = configuration.nodeID
        // Role, term and what it hears of each member, in one look at the state machine.
        let leader = raft?.state.withLock { raft in
            raft.isLeader && raft.transferee == nil
                ? (
                    term: raft.term, silences: raft.memberSilences, answerTicks: raft.configuration.electionTicks,
                    lostLogs: raft.status.lostLogs
                ) : nil
        }
        // (A single node's hosts can only be its own agent's: nothing to look at without one.)
        guard mine != nil || leader != nil else { return look }
        let hosts = try views.read { db in
            try Row.fetchAll(
                db,
                sql: leader != nil
                    ? "SELECT name, state, state_reason, agent FROM hosts WHERE agent != '' OR name = ?"
                    : "SELECT name, state, state_reason, agent FROM hosts WHERE agent = ? OR name = ?",
                arguments: leader != nil ? [mine ?? ""] : [me, mine ?? ""]
            ).map {
                HostLiveness.Host(name: $0["name"], state: $0["state"], reason: $0["state_reason"], agent: $0["agent"])
            }
        }
        if let mine {
            let members = raft.map { Set($0.status.membership.all.keys) } ?? [me]
            if let own = hosts.first(where: { $0.name == mine }) {
                let holder = own.agent
                let claim =
                    holder == me
                    // Not ready for a reason of its own (it ran another host): taken back. One the
                    // leader gave is the leader's to take back (after its member has answered a while).
                    ? own.state != "ready" && !HostLiveness.isOurs(own.reason)
                    // No agent, one that left the region, or one the leader says does not answer.
                    : holder.isEmpty || !members.contains(holder) || own.state != "ready"
                if claim {
                    look.own.append(HostStateReported(name: mine, state: "ready", agent: me))
                } else if holder != me {
                    look.sharedWith = (mine, holder)
                }
            }
            // An agent runs one host: those this member's agent claimed under other names go.
            for former in hosts where former.agent == me && former.name != mine && former.state == "ready" {
                look.own.append(
                    HostStateReported(
                        name: former.name, state: "not_ready",
                        reason:
                            "\(HostLiveness.reasonPrefix)\(me) runs host \(mine) now (its node was started with another --host-name)"
                    ))
            }
        }
        guard let leader, let tick = raft?.configuration.tickInterval else { return look }
        look.leaderTerm = leader.term
        // (Those this node reports itself in this look are left out: its own report goes first.)
        let reported = Set(look.own.map(\.name))
        look.hosts = hosts.filter { !$0.agent.isEmpty && !reported.contains($0.name) }
        look.member = { member in
            if member == me { return .answering }
            guard let silence = leader.silences[member] else { return .unknown }
            if leader.lostLogs[member] != nil { return .lostLog }
            return silence.heardThisTerm && silence.ticks < leader.answerTicks
                ? .answering : .silent(tick * silence.ticks)
        }
        return look
    }
}

extension Node {
    /// On a graceful shutdown (SIGTERM) of a member whose host agent runs a host: reports that
    /// host not ready at once, waiting up to `timeout`, rather than leave it ready, its VMs shown
    /// running, until the leader finds the member silent 10 s later. Started again, the agent
    /// claims it back. A single node says nothing: nothing else would read it meanwhile.
    func reportHostStopping(within timeout: Duration) async {
        guard raft != nil, let host = agentHost.withLock({ $0 }) else { return }
        let me = configuration.nodeID
        let claimed = try? views.read { db in
            try Row.fetchOne(db, sql: "SELECT agent, state FROM hosts WHERE name = ?", arguments: [host]).map {
                ($0["agent"] as String) == me && ($0["state"] as String) == "ready"
            }
        }
        guard claimed == true else { return }
        let report = HostStateReported(
            name: host, state: "not_ready",
            reason: "\(HostLiveness.reasonPrefix)\(me) shut down, and its guests with it")
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    _ = try await self.consensus.propose([Record(at: Node.now(), .hostStateReported(report)).encoded()])
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw NodeError(.unavailable, "no answer within \(timeout)")
                }
                defer { group.cancelAll() }
                try await group.next()
            }
            HostLivenessWatch.log(report, node: self)
        } catch {
            logger.info("could not report host \(host) not ready before stopping: \(error)")
        }
    }
}
