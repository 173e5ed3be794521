import Foundation
import Synchronization

/// What a test makes the log meet: disk failures, and a pause inside a read. The store's one seam
/// for faults.
///
/// The product never creates one (``LogStore``'s public initializer passes none). A test arms a
/// fault for the next few times an operation runs; the journal and the checkpoint then fail there
/// as the kernel would make them fail, leaving on disk what such a failure can leave. A pause lets
/// a test run writes at the one moment a read could be hurt by them.
final class LogFaults: Sendable {
    /// Where a fault can strike.
    enum Point: Sendable, Hashable {
        /// A journal record's write stops halfway (a short write, a full disk): half of the record
        /// is in the file, the rest is not.
        case journalWrite
        /// The record is written but its fdatasync fails (an I/O error): its bytes are in the page
        /// cache and may well reach the disk, but the write is not known to be durable.
        case journalSync
        /// A checkpoint's LMDB transaction fails after its writes, before its commit, and is aborted.
        case lmdbCommit
    }

    private let armed = Mutex<[Point: Int]>([:])
    private let pause = Mutex<(@Sendable () -> Void)?>(nil)

    init() {}

    /// Makes the next `times` operations at `point` fail.
    func arm(_ point: Point, times: Int = 1) {
        armed.withLock { $0[point, default: 0] += times }
    }

    /// Stops every armed fault.
    func disarm() {
        armed.withLock { $0 = [:] }
    }

    /// True when an armed fault strikes this operation at `point` (using it up).
    func strikes(_ point: Point) -> Bool {
        armed.withLock { armed in
            guard let left = armed[point], left > 0 else { return false }
            armed[point] = left - 1
            return true
        }
    }

    /// Runs `body` once, on the reading thread, the next time a range read has taken the log's
    /// state and is about to read LMDB.
    func pauseOnceBeforeDurableRead(_ body: @escaping @Sendable () -> Void) {
        pause.withLock { $0 = body }
    }

    /// Called by a range read between its look at the state and its LMDB read.
    func beforeDurableRead() {
        let body = pause.withLock { pause in
            defer { pause = nil }
            return pause
        }
        body?()
    }

    /// The error an injected fault reports: what the real call would have thrown, with EIO.
    static func error(_ code: StoreError.Code, _ message: String) -> StoreError {
        StoreError(code, "\(message): Input/output error (injected)", cause: POSIXError(.EIO))
    }
}
