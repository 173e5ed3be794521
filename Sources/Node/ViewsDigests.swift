import GRDB
import Store
import Synchronization

/// The digests of its views a member took at `dwcp cluster verify`'s markers.
///
/// The apply loop ends a batch at each marker and opens a read snapshot of the views right after
/// it (``begin(_:snapshot:)``), so the snapshot holds the views at exactly the marker's index on
/// every member; ``run()`` hashes it off the apply loop while applying goes on. The last
/// ``kept`` outcomes are kept in memory (a restart forgets them).
final class ViewsDigests: Sendable {
    /// Where one marker's digest stands.
    enum Outcome: Sendable, Equatable {
        case hashing
        case done([TableDigest])
        case failed(String)
    }

    static let kept = 16

    private let outcomes = Mutex<[UInt64: Outcome]>([:])
    /// Advanced to a marker's index once its digest is done or failed (they are hashed in order).
    let settled = IndexWatermark(0)
    private let snapshots: AsyncStream<(UInt64, DatabaseSnapshot)>
    private let queue: AsyncStream<(UInt64, DatabaseSnapshot)>.Continuation

    init() {
        (snapshots, queue) = AsyncStream.makeStream(of: (UInt64, DatabaseSnapshot).self)
    }

    /// The marker at `index` has just applied: `snapshot` (opened before anything later applied)
    /// is hashed next.
    func begin(_ index: UInt64, snapshot: DatabaseSnapshot) {
        outcomes.withLock { outcomes in
            outcomes[index] = .hashing
            for old in outcomes.keys.sorted().dropLast(Self.kept) { outcomes[old] = nil }
        }
        queue.yield((index, snapshot))
    }

    /// The marker at `index` has applied, but no snapshot of it could be opened.
    func fail(_ index: UInt64, _ reason: String) {
        outcomes.withLock { $0[index] = .failed(reason) }
        settled.advance(to: index)
    }

    func outcome(at index: UInt64) -> Outcome? { outcomes.withLock { $0[index] } }

    /// Hashes each snapshot as it comes, until cancelled.
    func run() async throws {
        for await (index, snapshot) in snapshots {
            let outcome: Outcome
            do {
                let (applied, tables) = try await snapshot.read { db in try ViewStore.digest(db) }
                // A snapshot from the leader installed between the marker's apply and the
                // snapshot's opening would show other views: said, not hashed as the marker's.
                outcome =
                    applied == index
                    ? .done(tables) : .failed("its views had moved on to log index \(applied) (a snapshot installed)")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcome = .failed("\(error)")
            }
            outcomes.withLock { if $0[index] != nil { $0[index] = outcome } }
            settled.advance(to: index)
        }
    }

    /// Ends ``run()`` (the node stops).
    func finish() { queue.finish() }
}
