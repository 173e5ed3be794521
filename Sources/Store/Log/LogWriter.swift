import CLMDB
import Dispatch
import Foundation
import Synchronization

/// The single writer thread of a ``LogStore``: it drains every queued write into one group (group
/// commit), has the store make the group durable, then completes the waiting callers; between
/// groups, and when a checkpoint falls due while it waits, it has the store checkpoint its journal.
final class LogWriter: Sendable {
    enum Operation: Sendable {
        case append([LogEntry])
        case appendNext(term: UInt64, kind: LogEntry.Kind, payloads: [[UInt8]])
        case saveHardState(HardState)
        case truncate(from: UInt64)
        case compact(through: UInt64, term: UInt64)
        /// Every entry goes; the log starts over behind a snapshot at (`snapshotIndex`, `term`).
        case reset(snapshotIndex: UInt64, term: UInt64)
        /// Several operations in order, all or none (one Raft ready).
        case batch([Operation])
        /// Move every journaled change into LMDB now.
        case checkpoint
    }

    enum Outcome: Sendable {
        case done
        case appended(ClosedRange<UInt64>)
    }

    struct Job: Sendable {
        let operation: Operation
        let continuation: CheckedContinuation<Outcome, any Error>
        /// Runs on the writer thread once the operation is durable, before the caller resumes.
        var whenDurable: (@Sendable () -> Void)? = nil
    }

    private struct Queue: Sendable {
        var jobs: [Job] = []
        var stopping = false
        var running = false
        /// Stop as a crash would: without the last checkpoint (tests).
        var skipLastCheckpoint = false
    }

    private let queue = Mutex(Queue())
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let name: String

    init(name: String) {
        self.name = name
    }

    /// Starts the thread, which holds `claim` until it ends.
    func start(store: LogStore, holding claim: OpenLogClaim) {
        queue.withLock { $0.running = true }
        // The store owns the writer; the thread holds the store weakly so the store can be released.
        let thread = Thread { [weak store, self] in
            withExtendedLifetime(claim) { self.run(store: WeakStore(store)) }
        }
        thread.name = name
        thread.start()
    }

    /// The store as the writer thread sees it: strongly only while it performs a group.
    private struct WeakStore {
        weak var store: LogStore?
        init(_ store: LogStore?) { self.store = store }
    }

    /// Set on the writer thread, so `stop()` called there (the store's last release) does not wait on itself.
    private static let writerKey = "dwcp.log-writer"

    func submit(_ operation: Operation, whenDurable: (@Sendable () -> Void)? = nil) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = queue.withLock { q in
                guard !q.stopping else { return false }
                q.jobs.append(Job(operation: operation, continuation: continuation, whenDurable: whenDurable))
                return true
            }
            if accepted {
                wakeup.signal()
            } else {
                continuation.resume(throwing: StoreError(.closed, "the log is closed"))
            }
        }
    }

    /// Asks the thread to finish the queued writes and exit; waits for it. Unless
    /// `lastCheckpoint` is false, the thread checkpoints the journal before it exits.
    func stop(lastCheckpoint: Bool = true) {
        let wasRunning = queue.withLock { q -> Bool in
            let was = q.running && !q.stopping
            q.stopping = true
            q.skipLastCheckpoint = !lastCheckpoint
            return was
        }
        guard wasRunning else { return }
        wakeup.signal()
        if Thread.current.threadDictionary[Self.writerKey] as? String == name { return }
        finished.wait()
    }

    private func run(store weak: WeakStore) {
        Thread.current.threadDictionary[Self.writerKey] = name
        defer { finished.signal() }
        while true {
            if let due = weak.store?.checkpointDue {
                let wait = ContinuousClock.now.duration(to: due)
                // Rounded up by a millisecond: DispatchTime is another clock, and waking early would spin.
                let nanoseconds =
                    max(0, wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000)
                    + 1_000_000
                if wakeup.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .timedOut {
                    weak.store?.checkpointIfDue()
                    continue
                }
            } else {
                wakeup.wait()
            }
            let (jobs, stopping, lastCheckpoint) = queue.withLock { q -> ([Job], Bool, Bool) in
                let jobs = q.jobs
                q.jobs.removeAll(keepingCapacity: true)
                return (jobs, q.stopping, !q.skipLastCheckpoint)
            }
            if !jobs.isEmpty {
                if let store = weak.store {
                    store.perform(jobs)
                } else {
                    for job in jobs { job.continuation.resume(throwing: StoreError(.closed, "the log is closed")) }
                }
            }
            if stopping {
                // Whatever the journal holds goes into LMDB, so the next open has nothing to
                // replay; on failure the journal keeps it.
                if lastCheckpoint { try? weak.store?.checkpoint() }
                // Fail anything that slipped in after the final drain.
                let late = queue.withLock { q -> [Job] in
                    q.running = false
                    defer { q.jobs.removeAll() }
                    return q.jobs
                }
                for job in late { job.continuation.resume(throwing: StoreError(.closed, "the log is closed")) }
                return
            }
        }
    }
}
