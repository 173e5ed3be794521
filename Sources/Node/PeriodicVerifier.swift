import Logging
import NIOCore
import NIOPosix
import Store

/// `dwcp serve --verify-every`: the leader does what `dwcp cluster verify` does on its own, every
/// so often. It proposes a digest marker, asks every member for its digest of its views there
/// (itself directly, the others at their API), compares them (``ViewsComparison``) and keeps the
/// outcome (``ViewsVerification``): `dwcp cluster status` shows it, `GET /metrics` counts it, and a
/// member whose views differ is logged as an error with what to do. It only reports: a damaged
/// member's views are rebuilt by an operator.
///
/// Every member runs the loop; the member that leads verifies, first soon after it is elected
/// (``firstAfterElection``), then every ``every``. A member that stops leading forgets its last
/// outcome: the next leader's is the region's. A verify costs every member a read of its whole
/// views, off its apply loop (about a second per 100,000 VMs).
struct PeriodicVerifier: Sendable {
    let every: Duration
    /// Asks another member for its digest at a marker's index, waiting up to a deadline.
    var askMember:
        @Sendable (_ node: Node, _ id: String, _ index: UInt64, _ deadline: ContinuousClock.Instant) async ->
            ViewsComparison.Answer = Self.askOverAPI

    /// How long a verify waits for the members' digests: a member still applying or hashing the
    /// marker (a large region's views take seconds to read) is asked again until then.
    static let patience = Duration.seconds(300)
    /// How long each ask may wait at the member: under the 10 s the client that asks it waits
    /// (``LeaderRelay/deadline``).
    static let askTimeout = Duration.seconds(8)

    /// A new leader's first verify comes this long after its election (or ``every``, if shorter),
    /// so `dwcp cluster status` has an outcome soon after a change of leader.
    var firstAfterElection: Duration { min(every, .seconds(30)) }

    func run(node: Node) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // How often leadership is looked at: a new leader notices within one look.
        let look = min(every, .seconds(1))
        var due: ContinuousClock.Instant?
        while true {
            try await loop.sleep(for: look)
            guard node.consensus.isLeader else {
                if due != nil { node.forgetPeriodicVerify() }
                due = nil
                continue
            }
            let now = ContinuousClock.now
            guard let next = due else {
                due = now + firstAfterElection - look
                continue
            }
            guard now >= next else { continue }
            let verify = try await verifyOnce(node: node)
            // A member that stopped leading meanwhile does not speak for the region: the new
            // leader verifies on its own.
            if node.consensus.isLeader { node.recordPeriodicVerify(verify) }
            // No marker (a transfer under way, a commit timeout): tried again soon, not a period later.
            due = .now + (verify.verdict == .noMarker ? firstAfterElection : every)
        }
    }

    /// One verify: a marker, every member's digest there, compared.
    func verifyOnce(node: Node) async throws -> ViewsVerification {
        let started = Node.now()
        let index: UInt64
        do {
            index = try await node.proposeViewsDigest()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            // Leadership moved, or no majority answers: the next round (perhaps another leader's)
            // tries again.
            return ViewsVerification(
                verifiedBy: node.configuration.nodeID, at: started, every: every, outcome: .noMarker("\(error)"))
        }
        let deadline = ContinuousClock.now + Self.patience
        let members = node.raft?.status.membership.all.keys.sorted() ?? [node.configuration.nodeID]
        let answers = await withTaskGroup(of: ViewsComparison.Answer.self) { group in
            for id in members {
                group.addTask {
                    guard id != node.configuration.nodeID else {
                        do {
                            let wait = ContinuousClock.now.duration(to: deadline)
                            let digest = try await node.viewsDigest(at: index, timeout: wait)
                            return .init(id: id, digest: digest)
                        } catch let error as NodeError {
                            return .init(id: id, error: error.message, gone: error.code != .unavailable)
                        } catch {
                            return .init(id: id, error: "\(error)")
                        }
                    }
                    return await askMember(node, id, index, deadline)
                }
            }
            var answers: [ViewsComparison.Answer] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        if Task.isCancelled { throw CancellationError() }
        let comparison = ViewsComparison(logIndex: index, answers: answers)
        return ViewsVerification(
            verifiedBy: node.configuration.nodeID, at: started, every: every, outcome: .compared(comparison))
    }

    /// Asks member `id` at its API (`GET /v1/views/digest`), as `dwcp cluster verify` does, again
    /// (half a second later) while it answers 503 (not done yet), until `deadline` or until this
    /// member stops leading. A member that cannot be reached, or does not answer in time, is not
    /// asked again: it is reported as not answering.
    @Sendable static func askOverAPI(
        node: Node, id: String, index: UInt64, deadline: ContinuousClock.Instant
    ) async -> ViewsComparison.Answer {
        guard let api = node.raft?.apiAddress(of: id) else {
            return .init(id: id, error: "its API address is not known (see dwcp cluster status)")
        }
        while true {
            let wait = min(askTimeout, max(.zero, ContinuousClock.now.duration(to: deadline)))
            let path = "/v1/views/digest?log_index=\(index)&timeout_ms=\(Int(wait / .milliseconds(1)))"
            let status: UInt
            let text: String
            do {
                let (code, body) = try await LeaderRelay.get(
                    path, at: api, from: node.configuration.nodeID, tls: node.apiTLS)
                (status, text) = (code, String(buffer: body))
            } catch {
                let why = LeaderRelay.neverConnected(error) ? "could not be reached" : "did not answer"
                return .init(id: id, error: "its API at \(api) \(why): \(error)")
            }
            let answer = try? JSONValue.parse(text)
            if status == 200, let answer {
                guard answer["node_id"]?.stringValue == id else {
                    return .init(
                        id: id,
                        error:
                            "its API address \(api) is answered by \(answer["node_id"]?.stringValue ?? "no member id")")
                }
                return .init(id: id, digestAnswer: answer)
            }
            let message = answer?["error"]?["message"]?.stringValue ?? String(text.prefix(200))
            if status == 503, ContinuousClock.now < deadline, node.consensus.isLeader, !Task.isCancelled {
                try? await MultiThreadedEventLoopGroup.singleton.any().sleep(for: .milliseconds(500))
                continue
            }
            if status == 404, message.hasPrefix("no such route") {
                return .init(id: id, error: "it runs a dwcp without verify (\(message))", gone: true)
            }
            // 404: no digest and none will come; 500: its views could not be read.
            return .init(id: id, error: "\(status): \(message)", gone: status == 404 || status == 500)
        }
    }
}
