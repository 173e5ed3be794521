import Node
import Store
import Synchronization

/// A one-node consensus that commits every proposal of payloads that apply once twice and answers
/// with the second copy's indexes: what a region does when a follower sent an intent on to a new
/// leader after its leader went away, and the first copy had committed after all.
///
/// With `rivalFirst`, another submission of the same request (one millisecond earlier) commits
/// before both, as a client's concurrent retry would. `committedFirst` payloads commit once, ahead
/// of the first such proposal (a change another client made meanwhile).
final class ProposingTwice: Consensus {
    let local: LocalConsensus
    let rivalFirst: Bool
    let committedFirst: Mutex<[[UInt8]]>

    init(log: LogStore, rivalFirst: Bool = false, committedFirst: [[UInt8]] = []) {
        local = LocalConsensus(log: log)
        self.rivalFirst = rivalFirst
        self.committedFirst = Mutex(committedFirst)
    }

    var committed: IndexWatermark { local.committed }
    var isLeader: Bool { true }
    func readIndex() async throws -> UInt64 { try await local.readIndex() }
    func proposeNoop(payload: [UInt8]) async throws -> UInt64 { try await local.proposeNoop(payload: payload) }

    /// Tells `appended` only the second copy's indexes, once committed.
    func propose(
        _ payloads: [[UInt8]], appliesOnce: Bool, appended: (ClosedRange<UInt64>) -> Void
    ) async throws -> ClosedRange<UInt64> {
        guard appliesOnce else { return try await local.propose(payloads, appliesOnce: false, appended: appended) }
        let first = committedFirst.withLock { first in
            defer { first = [] }
            return first
        }
        if !first.isEmpty { _ = try await local.propose(first) }
        if rivalFirst {
            let rivals = try payloads.map { payload in
                var record = try Record(decoding: payload)
                record.at -= 1
                return record.encoded()
            }
            _ = try await local.propose(rivals, appliesOnce: true)
        }
        _ = try await local.propose(payloads, appliesOnce: true)
        let second = try await local.propose(payloads, appliesOnce: true)
        appended(second)
        return second
    }
}
