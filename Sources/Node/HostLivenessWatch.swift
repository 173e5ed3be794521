import GRDB
import Logging
import NIOCore
import NIOPosix
import Store

/// Every second, on every member: a member whose host agent runs a host the views do not name it
/// the agent of claims it (`host.state_reported`, ready, with its id), and the leader reports
/// hosts whose agent's member stopped answering, or answers again (``HostLiveness``). A claim goes
/// out once every member's views can apply such records (schema 011); the leader's reports do not
/// ask again: they are only of hosts a claim named an agent for, which passed that check, and the
/// member they are about is the one that does not answer. The next look waits until what went
/// out has applied here.
struct HostLivenessWatch: Sendable {
    static let checkEvery: Duration = .seconds(1)

    func run(node: Node) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // Not before the views' values are known to be ones the applier writes (as the scheduler).
        _ = try await node.snapshots.viewsChecked.wait(until: 1)
        var heldBackBy: String?
        while true {
            try await loop.sleep(for: Self.checkEvery)
            let reports: [HostStateReported]
            do {
                reports = try node.hostReports()
            } catch {
                // (The views could not be read: said by whatever else reads them.)
                continue
            }
            guard !reports.isEmpty else { continue }
            if reports.contains(where: { !$0.agent.isEmpty }) {
                let reason = await node.memberWhoseViewsLack("host.state_reported") {
                    ViewStore.knowsHostState(schemaVersion: $0)
                }
                if let reason, reason != heldBackBy {
                    node.logger.notice(
                        "this node's host agent claims its host once every member's views can apply host.state_reported records: \(reason)"
                    )
                }
                heldBackBy = reason
                guard reason == nil else { continue }
            }
            do {
                let records = reports.map { Record(at: Node.now(), .hostStateReported($0)).encoded() }
                let range = try await node.consensus.propose(records)
                _ = try await node.applied.wait(until: range.upperBound)
                for report in reports { Self.log(report, node: node) }
            } catch let error as CancellationError {
                throw error
            } catch {
                // Leadership moved (the next leader looks again), or no quorum: the next round.
                if !Task.isCancelled { node.logger.info("hosts' states were not reported: \(error); trying again") }
            }
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

extension Node {
    /// What ``HostLivenessWatch`` proposes now: this node's claim of its agent's host, and, on the
    /// leader, the reports ``HostLiveness`` gives.
    func hostReports() throws -> [HostStateReported] {
        let mine = agentHost.withLock { $0 }
        // (A single node's hosts can only be its own agent's: nothing to look at without one.)
        let leads = raft != nil && consensus.isLeader
        guard mine != nil || leads else { return [] }
        let hosts = try views.read { db in
            try Row.fetchAll(
                db, sql: "SELECT name, state, state_reason, agent FROM hosts WHERE agent != '' OR name = ?",
                arguments: [mine ?? ""]
            ).map {
                HostLiveness.Host(name: $0["name"], state: $0["state"], reason: $0["state_reason"], agent: $0["agent"])
            }
        }
        let me = configuration.nodeID
        if let mine, let host = hosts.first(where: { $0.name == mine }), host.agent != me {
            return [HostStateReported(name: mine, state: "ready", agent: me)]
        }
        guard leads else { return [] }
        guard let raft else { return [] }
        let (silences, answering) = raft.state.withLock { ($0.memberSilenceTicks, $0.configuration.electionTicks) }
        let tick = raft.configuration.tickInterval
        return HostLiveness.reports(hosts: hosts) { member in
            if member == me { return .answering }
            guard let ticks = silences[member] else { return .unknown }
            return ticks < answering ? .answering : .silent(tick * ticks)
        }
    }
}
