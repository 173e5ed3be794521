import Synchronization

/// The proposals a follower forwarded to its leader and has not had an answer for, kept so that
/// they can be sent again instead of failing their callers with a 503.
///
/// A proposal is *parked* (held until a leader is known, then sent to it) when:
/// - no leader was known when it came (an election is under way);
/// - the leader refused it: nothing was appended (it was handing leadership over, or had lost it);
/// - it ``appliesOnce`` (an intent with a request id, which the views apply once), and the leader
///   it went to lost its leadership before answering. Another proposal is failed then: it may have
///   been appended, and sending it again could apply it twice.
///
/// ``RaftConsensus`` sends the parked ones on when its status names a leader, and on every tick.
final class ForwardedProposals: Sendable {
    private struct Proposal {
        let payloads: [[UInt8]]
        let appliesOnce: Bool
        var parked: Bool
    }

    private let proposals = Mutex<[UInt64: Proposal]>([:])

    /// Keeps `payloads` under the waiter `id` until ``remove(_:)``.
    func add(_ id: UInt64, _ payloads: [[UInt8]], appliesOnce: Bool) {
        proposals.withLock { $0[id] = Proposal(payloads: payloads, appliesOnce: appliesOnce, parked: false) }
    }

    /// Forgets `id` (its caller has its answer, or gave up).
    func remove(_ id: UInt64) {
        _ = proposals.withLock { $0.removeValue(forKey: id) }
    }

    /// Parks `id` until a leader is known; false when it is no longer kept.
    @discardableResult
    func park(_ id: UInt64) -> Bool {
        proposals.withLock { proposals in
            guard proposals[id] != nil else { return false }
            proposals[id]!.parked = true
            return true
        }
    }

    /// Whether `id` may be sent again after its leader went away without answering.
    func appliesOnce(_ id: UInt64) -> Bool {
        proposals.withLock { $0[id]?.appliesOnce ?? false }
    }

    var hasParked: Bool {
        proposals.withLock { $0.values.contains { $0.parked } }
    }

    /// The parked proposals, no longer parked: the caller sends them (or parks them again).
    func unpark() -> [(id: UInt64, payloads: [[UInt8]])] {
        proposals.withLock { proposals in
            let parked = proposals.filter(\.value.parked).sorted { $0.key < $1.key }
            for (id, _) in parked { proposals[id]!.parked = false }
            return parked.map { ($0.key, $0.value.payloads) }
        }
    }
}
