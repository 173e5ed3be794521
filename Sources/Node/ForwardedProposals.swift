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
        /// The member that last refused it, and when: not asked again for ``refusalPause``.
        var refusal: (by: String, at: ContinuousClock.Instant)?
        /// Why it was parked so far (each reason is counted once per proposal).
        var reasons: Set<NodeMetrics.ProposalRetry> = []
        /// When it was last sent to a leader (nil while parked or not yet sent).
        var sentAt: ContinuousClock.Instant?
    }

    /// A proposal that applies once and has had no answer this long is sent again: its frame may
    /// have been lost (a connection to the leader that failed as it opened drops the frames that
    /// waited for it), and the leader answers a forward within a round trip. Until this, such a
    /// proposal waited out its caller's 2 s and failed with a 503.
    static let resendAfter = Duration.milliseconds(500)

    /// How long a member that refused a proposal (it was handing its leadership over) is not asked
    /// again: a transfer ends within an election timeout, and a new leader gets it at once.
    static let refusalPause = Duration.milliseconds(50)

    private let proposals = Mutex<[UInt64: Proposal]>([:])

    /// Keeps `payloads` under the waiter `id` until ``remove(_:)``.
    func add(_ id: UInt64, _ payloads: [[UInt8]], appliesOnce: Bool) {
        proposals.withLock {
            $0[id] = Proposal(payloads: payloads, appliesOnce: appliesOnce, parked: false, refusal: nil)
        }
    }

    /// Forgets `id` (its caller has its answer, or gave up).
    func remove(_ id: UInt64) {
        _ = proposals.withLock { $0.removeValue(forKey: id) }
    }

    /// Parks `id` until a leader is known, for `reason` (`refusedBy`: the member that refused it).
    /// True the first time `id` is parked for `reason` (what the metrics count: a proposal refused
    /// on every try of a long transfer is one proposal kept); false after that, or when it is no
    /// longer kept.
    @discardableResult
    func park(
        _ id: UInt64, because reason: NodeMetrics.ProposalRetry, refusedBy member: String? = nil,
        at now: ContinuousClock.Instant = .now
    ) -> Bool {
        proposals.withLock { proposals in
            guard proposals[id] != nil else { return false }
            proposals[id]!.parked = true
            proposals[id]!.sentAt = nil
            if let member { proposals[id]!.refusal = (member, now) }
            return proposals[id]!.reasons.insert(reason).inserted
        }
    }

    /// Notes that `id` went to a leader now.
    func sent(_ id: UInt64) {
        proposals.withLock { proposals in
            guard proposals[id] != nil else { return }
            proposals[id]!.sentAt = .now
        }
    }

    /// The proposals that apply once, went to a leader at least ``resendAfter`` ago and are still
    /// unanswered, by id: the caller sends them again (and they count as sent now). `first`: the
    /// first time for this proposal (what the metrics count).
    func unanswered(at now: ContinuousClock.Instant = .now) -> [(id: UInt64, payloads: [[UInt8]], first: Bool)] {
        proposals.withLock { proposals in
            let due = proposals.filter { _, proposal in
                guard proposal.appliesOnce, !proposal.parked, let sentAt = proposal.sentAt else { return false }
                return now - sentAt >= Self.resendAfter
            }.keys.sorted()
            return due.map { id in
                proposals[id]!.sentAt = now
                let first = proposals[id]!.reasons.insert(.unanswered).inserted
                return (id, proposals[id]!.payloads, first)
            }
        }
    }

    /// Whether `id` may be sent again after its leader went away without answering.
    func appliesOnce(_ id: UInt64) -> Bool {
        proposals.withLock { $0[id]?.appliesOnce ?? false }
    }

    var hasParked: Bool {
        proposals.withLock { $0.values.contains { $0.parked } }
    }

    /// How many wait for a leader now.
    var parkedCount: Int {
        proposals.withLock { $0.values.count { $0.parked } }
    }

    /// The parked proposals to send to `leader`, no longer parked: the caller sends them (or parks
    /// them again). Those `leader` refused less than ``refusalPause`` ago stay parked.
    func unpark(for leader: String, at now: ContinuousClock.Instant = .now) -> [(id: UInt64, payloads: [[UInt8]])] {
        proposals.withLock { proposals in
            let due = proposals.filter { _, proposal in
                guard proposal.parked else { return false }
                guard let refusal = proposal.refusal, refusal.by == leader else { return true }
                return refusal.at.duration(to: now) >= Self.refusalPause
            }.sorted { $0.key < $1.key }
            for (id, _) in due { proposals[id]!.parked = false }
            return due.map { ($0.key, $0.value.payloads) }
        }
    }
}
