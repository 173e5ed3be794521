import GRDB
import Store
import Synchronization

/// The digests of its views a member took at `dwcp cluster verify`'s markers.
///
/// The apply loop ends a batch at each marker and, before it tells anyone the marker applied,
/// opens a read snapshot of the views (``markerApplied(_:open:)``), so the snapshot holds the
/// views at exactly the marker's index on every member; ``run()`` hashes it off the apply loop
/// while applying goes on. At most ``maxPending`` markers wait to be hashed (each holds a
/// connection and a read transaction, which keeps WAL checkpoints from passing it); one more is
/// refused, to be asked again. The last ``kept`` outcomes are kept in memory (a restart forgets
/// them).
final class ViewsDigests: Sendable {
    /// Where one marker's digest stands.
    enum Outcome: Sendable, Equatable {
        case hashing
        case done(ViewsDigest)
        /// No digest: why, and whether it is an error (reading the views failed) rather than a
        /// marker this member could not take (skipped, or its views moved on): neither comes back.
        case failed(String, readFailed: Bool)
    }

    /// What ``run()`` has to do next, in marker order: hash a snapshot, or only settle a marker
    /// that has none (so ``settled`` moves in index order).
    private enum Work: Sendable {
        case hash(UInt64, DatabaseSnapshot)
        case settle(UInt64)
    }

    static let kept = 16
    static let maxPending = 2

    private struct State {
        var outcomes: [UInt64: Outcome] = [:]
        var pending = 0
        /// The last marker this member proposed as leader, and whether a proposal is under way
        /// (with the verifies waiting to share it).
        var proposed: UInt64 = 0
        var proposing = false
        /// By a number of their own, so a cancelled one can be taken out.
        var sharers: [UInt64: CheckedContinuation<Result<UInt64, any Error>?, Never>] = [:]
        var nextSharer: UInt64 = 0
    }

    /// What a verify asked of the leader does: share a marker still in flight, or propose one.
    enum Claim {
        case share(UInt64)
        case propose
    }

    private let views: ViewStore
    private let state = Mutex(State())
    /// Advanced to each marker's index once its outcome is final, in index order.
    let settled = IndexWatermark(0)
    private let work: AsyncStream<Work>
    private let queue: AsyncStream<Work>.Continuation

    init(views: ViewStore) {
        self.views = views
        (work, queue) = AsyncStream.makeStream(of: Work.self)
    }

    /// The marker at `index` has just applied: opens the snapshot its digest is taken from (with
    /// `open`, on the caller's thread, before anything later applies), or refuses when
    /// ``maxPending`` wait already.
    func markerApplied(_ index: UInt64, open: () throws -> DatabaseSnapshot) {
        let admitted = state.withLock { state -> Bool in
            let admitted = state.pending < Self.maxPending
            if admitted { state.pending += 1 }
            return admitted
        }
        var next = Work.settle(index)
        let outcome: Outcome
        if !admitted {
            outcome = .failed(
                "it skipped this marker: \(Self.maxPending) earlier ones were still being hashed", readFailed: false)
        } else {
            do {
                next = .hash(index, try open())
                outcome = .hashing
            } catch {
                state.withLock { $0.pending -= 1 }
                outcome = .failed("no snapshot of its views could be opened: \(error)", readFailed: false)
            }
        }
        state.withLock { state in
            state.outcomes[index] = outcome
            for old in state.outcomes.keys.sorted().dropLast(Self.kept) { state.outcomes[old] = nil }
        }
        queue.yield(next)
    }

    func outcome(at index: UInt64) -> Outcome? { state.withLock { $0.outcomes[index] } }

    /// The outcome at `index`, waiting up to `timeout` while it is being hashed.
    func outcome(at index: UInt64, timeout: Duration) async throws -> Outcome? {
        if outcome(at: index) == .hashing { _ = try await settled.wait(until: index, timeout: timeout) }
        return outcome(at: index)
    }

    /// A verify asked of the leader shares the marker it proposed last while that marker is not
    /// settled here yet (proposed, committing, applying or hashing), or the one being proposed now
    /// (and its failure, if it fails): verifies asked together make one marker, and each marker
    /// costs every member a whole read of its views. Otherwise the caller proposes, and must call
    /// ``proposed(_:)`` after. `applied`: this member's applied index now (a marker it applied
    /// with no digest begun, taken in a snapshot, is not shared).
    func claimProposal(applied: @Sendable () -> UInt64) async throws -> Claim {
        while true {
            let appliedNow = applied()
            let claim = state.withLock { state -> Claim? in
                if state.proposed > settled.value,
                    appliedNow < state.proposed || state.outcomes[state.proposed] == .hashing
                {
                    return .share(state.proposed)
                }
                if state.proposing { return nil }
                state.proposing = true
                return .propose
            }
            if let claim { return claim }
            // The proposal under way ends within the commit timeout, whatever happens to it; nil
            // when it ended before this one could wait for it (then it claims again). The wait
            // ends at once when the caller is cancelled: a node stopping cancels its periodic
            // verify, while the proposal it shares may wait on a commit deadline that only the
            // (stopped) Raft ticker would expire.
            let sharer = state.withLock { state in
                defer { state.nextSharer += 1 }
                return state.nextSharer
            }
            let shared = await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let ended = state.withLock { state -> Bool in
                        guard state.proposing, !Task.isCancelled else { return true }
                        state.sharers[sharer] = continuation
                        return false
                    }
                    if ended { continuation.resume(returning: nil) }
                }
            } onCancel: {
                let waiting = state.withLock { $0.sharers.removeValue(forKey: sharer) }
                waiting?.resume(returning: .failure(CancellationError()))
            }
            try Task.checkCancellation()
            if let shared { return .share(try shared.get()) }
        }
    }

    /// How many verifies wait for the proposal under way (for tests).
    var sharersWaiting: Int { state.withLock { $0.sharers.count } }

    /// The proposal a ``claimProposal(applied:)`` asked for made the marker at an index, or
    /// failed: the verifies waiting for it get the same.
    func proposed(_ outcome: Result<UInt64, any Error>) {
        let sharers = state.withLock { state in
            if case .success(let index) = outcome { state.proposed = max(state.proposed, index) }
            state.proposing = false
            defer { state.sharers = [:] }
            return state.sharers.values
        }
        // A proposer that was cancelled (its task ended) failed for itself only: the verifies
        // that waited for it claim again.
        var cancelled = false
        if case .failure(let error) = outcome, error is CancellationError { cancelled = true }
        for sharer in sharers { sharer.resume(returning: cancelled ? nil : outcome) }
    }

    /// Hashes each snapshot as it comes, in marker order, until cancelled.
    func run() async throws {
        for await next in work {
            switch next {
            case .settle(let index):
                settled.advance(to: index)
            case .hash(let index, let snapshot):
                defer {
                    state.withLock { $0.pending -= 1 }
                    settled.advance(to: index)
                }
                // Forgotten meanwhile (more than `kept` markers since): not worth a whole read.
                guard outcome(at: index) == .hashing else { continue }
                let outcome: Outcome
                do {
                    let digest = try await views.digest(of: snapshot)
                    // A snapshot from the leader installed between the marker's apply and the
                    // snapshot's opening shows other views: said, not hashed as the marker's.
                    outcome =
                        digest.appliedIndex == index
                        ? .done(digest)
                        : .failed(
                            "its views moved on to log index \(digest.appliedIndex) (a snapshot from the leader was installed) before they could be read",
                            readFailed: false)
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    outcome = .failed("reading its views failed: \(error)", readFailed: true)
                }
                state.withLock { if $0.outcomes[index] != nil { $0.outcomes[index] = outcome } }
            }
        }
    }

    /// Ends ``run()`` (the node stops).
    func finish() { queue.finish() }
}
