import CLMDB
import Dispatch
import Foundation
import Synchronization

/// The single writer thread of a ``LogStore``: it drains every queued write into one LMDB write
/// transaction (group commit), commits it with fsync, then completes the waiting callers.
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
    }

    enum Outcome: Sendable {
        case done
        case appended(ClosedRange<UInt64>)
    }

    struct Job: Sendable {
        let operation: Operation
        let continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct Queue: Sendable {
        var jobs: [Job] = []
        var stopping = false
        var running = false
    }

    private let queue = Mutex(Queue())
    private let wakeup = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let name: String

    init(name: String) {
        self.name = name
    }

    func start(store: LogStore) {
        queue.withLock { $0.running = true }
        // The store owns the writer; the thread holds the store weakly so the store can be released.
        let thread = Thread { [weak store, self] in
            self.run(store: WeakStore(store))
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

    func submit(_ operation: Operation) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = queue.withLock { q in
                guard !q.stopping else { return false }
                q.jobs.append(Job(operation: operation, continuation: continuation))
                return true
            }
            if accepted {
                wakeup.signal()
            } else {
                continuation.resume(throwing: StoreError(.closed, "the log is closed"))
            }
        }
    }

    /// Asks the thread to finish the queued writes and exit; waits for it.
    func stop() {
        let wasRunning = queue.withLock { q -> Bool in
            let was = q.running && !q.stopping
            q.stopping = true
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
            wakeup.wait()
            let (jobs, stopping) = queue.withLock { q -> ([Job], Bool) in
                let jobs = q.jobs
                q.jobs.removeAll(keepingCapacity: true)
                return (jobs, q.stopping)
            }
            if !jobs.isEmpty {
                if let store = weak.store {
                    store.perform(jobs)
                } else {
                    for job in jobs { job.continuation.resume(throwing: StoreError(.closed, "the log is closed")) }
                }
            }
            if stopping {
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

extension LogStore {
    /// Runs a group of jobs in one write transaction. Jobs whose preconditions fail are completed
    /// with their error and skipped; the rest commit together, then are completed.
    func perform(_ jobs: [LogWriter.Job]) {
        let start = bounds.withLock { $0 }
        var results: [Result<LogWriter.Outcome, any Error>] = []
        let final: Bounds
        do {
            final = try environment.write { txn in
                results = []
                var b = start
                for job in jobs {
                    do {
                        results.append(.success(try apply(job.operation, to: &b, txn: txn)))
                    } catch let error as StoreError where error.code == .notContiguous {
                        results.append(.failure(error))
                    }
                }
                return b
            }
        } catch {
            for job in jobs { job.continuation.resume(throwing: error) }
            return
        }
        bounds.withLock { $0 = final }
        for (job, result) in zip(jobs, results) {
            job.continuation.resume(with: result)
        }
    }

    /// Writes an entry's frame straight into the page LMDB reserves for it (no intermediate buffer).
    private func putFrame(_ txn: OpaquePointer, index: UInt64, term: UInt64, kind: LogEntry.Kind, payload: [UInt8])
        throws
    {
        let size = LogEntry.frameOverhead + payload.count
        var key = index.bigEndian
        try withUnsafeMutableBytes(of: &key) { keyBuffer in
            var k = MDB_val(mv_size: 8, mv_data: keyBuffer.baseAddress)
            var v = MDB_val(mv_size: size, mv_data: nil)
            try LMDBEnvironment.check(
                mdb_put(txn, entriesDatabase, &k, &v, UInt32(MDB_RESERVE | MDB_APPEND)), "mdb_put")
            LogEntry.writeFrame(
                into: UnsafeMutableRawBufferPointer(start: v.mv_data, count: size), index: index, term: term,
                kind: kind,
                payload: payload)
        }
    }

    private func apply(_ operation: LogWriter.Operation, to b: inout Bounds, txn: OpaquePointer) throws
        -> LogWriter.Outcome
    {
        switch operation {
        case .append(let entries):
            guard let first = entries.first, first.index == b.lastIndex + 1 else {
                throw StoreError(
                    .notContiguous,
                    "append at \(entries.first?.index ?? 0) does not follow the last index \(b.lastIndex)")
            }
            for (offset, entry) in entries.enumerated() where entry.index != first.index + UInt64(offset) {
                throw StoreError(.notContiguous, "appended entries are not contiguous at \(entry.index)")
            }
            for entry in entries {
                try putFrame(txn, index: entry.index, term: entry.term, kind: entry.kind, payload: entry.payload)
            }
            b.lastIndex = entries[entries.count - 1].index
            b.lastTerm = entries[entries.count - 1].term
            return .done
        case .appendNext(let term, let kind, let payloads):
            let first = b.lastIndex + 1
            for (offset, payload) in payloads.enumerated() {
                let entry = LogEntry(index: first + UInt64(offset), term: term, kind: kind, payload: payload)
                try putFrame(txn, index: entry.index, term: entry.term, kind: entry.kind, payload: entry.payload)
            }
            b.lastIndex = first + UInt64(payloads.count) - 1
            b.lastTerm = term
            return .appended(first...b.lastIndex)
        case .saveHardState(let state):
            try LMDBEnvironment.put(txn, metaDatabase, key: Self.hardStateKey, value: state.frame())
            b.hardState = state
            return .done
        case .truncate(let index):
            guard index >= b.firstIndex else {
                throw StoreError(.notContiguous, "cannot truncate from \(index): the log starts at \(b.firstIndex)")
            }
            if index <= b.lastIndex {
                for i in index...b.lastIndex {
                    try LMDBEnvironment.delete(txn, entriesDatabase, key: Self.key(i))
                }
            }
            b.lastIndex = min(b.lastIndex, index - 1)
            if b.lastIndex == b.snapshotIndex {
                b.lastTerm = b.snapshotTerm
            } else if let previous = try LMDBEnvironment.get(txn, entriesDatabase, key: Self.key(b.lastIndex)) {
                b.lastTerm = try previous.withUnsafeBytes { try LogEntry(index: b.lastIndex, frame: $0).term }
            }
            return .done
        case .batch(let operations):
            for operation in operations {
                do {
                    _ = try apply(operation, to: &b, txn: txn)
                } catch let error as StoreError where error.code == .notContiguous {
                    // Not a skippable job error: the whole group's transaction is abandoned.
                    throw StoreError(.corruptEntry, "a replicated write does not fit the log: \(error.message)")
                }
            }
            return .done
        case .reset(let index, let term):
            if b.firstIndex <= b.lastIndex {
                for i in b.firstIndex...b.lastIndex {
                    try LMDBEnvironment.delete(txn, entriesDatabase, key: Self.key(i))
                }
            }
            b.lastIndex = b.snapshotIndex
            b.lastTerm = b.snapshotTerm
            guard index >= b.snapshotIndex else {
                throw StoreError(
                    .notContiguous, "cannot start the log over at \(index): it is compacted through \(b.snapshotIndex)")
            }
            return try apply(.compact(through: index, term: term), to: &b, txn: txn)
        case .compact(let index, let term):
            guard index > b.snapshotIndex else { return .done }
            if b.firstIndex <= min(index, b.lastIndex) {
                for i in b.firstIndex...min(index, b.lastIndex) {
                    try LMDBEnvironment.delete(txn, entriesDatabase, key: Self.key(i))
                }
            }
            var snap = [UInt8]()
            snap.appendLittleEndian(index)
            snap.appendLittleEndian(term)
            try LMDBEnvironment.put(txn, metaDatabase, key: Self.snapshotKey, value: snap)
            b.snapshotIndex = index
            b.snapshotTerm = term
            b.firstIndex = index + 1
            if b.lastIndex <= index {
                b.lastIndex = index
                b.lastTerm = term
            }
            return .done
        }
    }
}
