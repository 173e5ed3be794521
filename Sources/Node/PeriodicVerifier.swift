import Logging
import NIOCore
import NIOPosix
import Store

/// `dwcp serve --verify-every`: the leader does what `dwcp cluster verify` does on its own, every
/// so often. It proposes a digest marker, asks every member for its digest of its views there
/// (itself directly, the others at their API), compares them (``ViewsComparison``) and keeps the
/// outcome (``ViewsVerification``): `dwcp cluster status` shows it, `GET /metrics` counts it, and a
/// member whose views differ is logged as an error with what to do.
///
/// Every member runs it; only the leader of the moment verifies. A check costs every member a read
/// of its whole views, off its apply loop (about a second per 100,000 VMs).
struct PeriodicVerifier: Sendable {
    let every: Duration
    /// Asks another member for its digest at a marker's index.
    var askMember: @Sendable (_ node: Node, _ id: String, _ index: UInt64) async -> ViewsComparison.Answer =
        Self.askOverAPI

    /// How long each member may take to commit, apply and hash the marker: under the 10 s the
    /// client that asks it waits (``LeaderRelay/deadline``).
    static let memberTimeout = Duration.seconds(8)

    func run(node: Node) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        while true {
            try await loop.sleep(for: every)
            guard node.consensus.isLeader else { continue }
            let check = try await check(node: node)
            node.record(check)
        }
    }

    /// One check: a marker, every member's digest there, compared.
    func check(node: Node) async throws -> ViewsVerification {
        let started = ViewsVerification.now()
        let index: UInt64
        do {
            index = try await node.proposeViewsDigest()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            // Leadership moved, or no majority answers: the next round (perhaps another leader's)
            // tries again.
            return ViewsVerification(
                checkedBy: node.configuration.nodeID, at: started, every: every, outcome: .noMarker("\(error)"))
        }
        let members = node.raft?.status.membership.all.keys.sorted() ?? [node.configuration.nodeID]
        let answers = await withTaskGroup(of: ViewsComparison.Answer.self) { group in
            for id in members {
                group.addTask {
                    guard id != node.configuration.nodeID else {
                        do {
                            let digest = try await node.viewsDigest(at: index, timeout: Self.memberTimeout)
                            return .init(id: id, schemaVersion: digest.schemaVersion, tables: digest.tables)
                        } catch {
                            return .init(id: id, error: "\(error)")
                        }
                    }
                    return await askMember(node, id, index)
                }
            }
            var answers: [ViewsComparison.Answer] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        if Task.isCancelled { throw CancellationError() }
        let comparison = ViewsComparison(logIndex: index, answers: answers)
        return ViewsVerification(
            checkedBy: node.configuration.nodeID, at: started, every: every, outcome: .compared(comparison))
    }

    /// Asks member `id` at its API (`GET /v1/views/digest`), as `dwcp cluster verify` does.
    @Sendable static func askOverAPI(node: Node, id: String, index: UInt64) async -> ViewsComparison.Answer {
        guard let api = node.raft?.apiAddress(of: id) else {
            return .init(id: id, error: "its API address is not known (see dwcp cluster status)")
        }
        let path = "/v1/views/digest?log_index=\(index)&timeout_ms=\(Int(memberTimeout / .milliseconds(1)))"
        do {
            let (status, body) = try await LeaderRelay.get(
                path, at: api, from: node.configuration.nodeID, tls: node.apiTLS)
            let answer = try JSONValue.parse(String(buffer: body))
            guard status == 200 else {
                let message = answer["error"]?["message"]?.stringValue ?? String(buffer: body)
                // 404: no digest and none will come; 500: its views could not be read.
                return .init(id: id, error: "\(status): \(message)", gone: status == 404 || status == 500)
            }
            return .init(id: id, digestAnswer: answer)
        } catch {
            return .init(id: id, error: "its API at \(api) did not answer: \(error)")
        }
    }
}
