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
        /// Not taken: why, and whether asking again (a new marker) may succeed.
        case failed(String, transient: Bool)
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
            outcome = .failed("\(Self.maxPending) earlier verifies were still being hashed; ask again", transient: true)
        } else {
            do {
                next = .hash(index, try open())
                outcome = .hashing
            } catch {
                state.withLock { $0.pending -= 1 }
                outcome = .failed("no snapshot of the views could be opened: \(error)", transient: true)
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

    /// The latest marker this member is still hashing, if any.
    var latestHashing: UInt64? { state.withLock { $0.outcomes.filter { $0.value == .hashing }.keys.max() } }

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
                            "its views moved on to log index \(digest.appliedIndex) (a snapshot from the leader was installed) before they could be read; ask again",
                            transient: true)
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    outcome = .failed("\(error)", transient: false)
                }
                state.withLock { if $0.outcomes[index] != nil { $0.outcomes[index] = outcome } }
            }
        }
    }

    /// Ends ``run()`` (the node stops).
    func finish() { queue.finish() }
}
