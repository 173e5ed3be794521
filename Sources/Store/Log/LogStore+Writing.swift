import CLMDB
import Dispatch
import Foundation
import Metrics
import Synchronization

/// What the writer thread does with a group: apply its operations to the log's state in memory,
/// make them durable (a journal record, or straight into LMDB), publish the state to readers, and
/// complete the callers; and, when due, checkpoint the journaled changes into LMDB.
extension LogStore {
    /// Runs a group of jobs. Jobs whose preconditions fail are completed with their error and
    /// skipped; the rest become durable together, then are completed.
    func perform(_ jobs: [LogWriter.Job]) {
        var next = state.withLock { $0 }
        var resolved: [LogWriter.Operation] = []
        var results: [Result<LogWriter.Outcome, any Error>] = []
        var checkpointRequested = false
        do {
            for job in jobs {
                if case .checkpoint = job.operation { checkpointRequested = true }
                var jobOperations: [LogWriter.Operation] = []
                do {
                    results.append(.success(try apply(job.operation, to: &next, resolved: &jobOperations)))
                    resolved.append(contentsOf: jobOperations)
                } catch let error as StoreError where error.code == .notContiguous {
                    results.append(.failure(error))
                }
            }
            if !resolved.isEmpty {
                let started = ContinuousClock.now
                try makeDurable(resolved, reaching: next)
                metrics.writeDuration.record(duration: started.duration(to: .now))
                metrics.entriesWritten.increment(by: Int64(Self.appendedCount(resolved)))
            }
        } catch {
            metrics.writeFailures.increment()
            for job in jobs { job.continuation.resume(throwing: error) }
            return
        }
        // Before any caller resumes: what depends on durability alone (a follower's acknowledgement)
        // leaves from this thread without waiting for a task to be scheduled.
        for (job, result) in zip(jobs, results) {
            if case .success = result { job.whenDurable?() }
        }
        // The group is durable whatever a requested checkpoint does: only its callers hear of a failure.
        var checkpointFailure: (any Error)?
        if checkpointRequested {
            do { try checkpoint() } catch { checkpointFailure = error }
        }
        for (job, result) in zip(jobs, results) {
            if case .checkpoint = job.operation, let checkpointFailure {
                job.continuation.resume(throwing: checkpointFailure)
            } else {
                job.continuation.resume(with: result)
            }
        }
        checkpointIfDue()
    }

    /// The entries a group's resolved operations append (a truncation can make the last index fall).
    static func appendedCount(_ operations: [LogWriter.Operation]) -> Int {
        operations.reduce(0) { count, operation in
            if case .append(let entries) = operation { count + entries.count } else { count }
        }
    }

    /// A group whose record would be larger goes straight into LMDB: one synced commit of many
    /// entries costs about what the record's write and flush cost (bench/store: a 1,024-entry
    /// group through the journal ran at 0.70 of raw LMDB), and the bytes are written once.
    static let largestJournaledRecord = 64 << 10

    /// Writes a group's operations as one journal record, or (a record larger than
    /// ``largestJournaledRecord``) checkpoints the state they reach straight into LMDB; then
    /// publishes that state.
    private func makeDurable(_ operations: [LogWriter.Operation], reaching next: State) throws {
        let size = LogJournal.recordSize(payloadSize: LogJournal.payloadSize(of: operations))
        guard size <= min(journal.capacity, Self.largestJournaledRecord) else {
            try writeToLMDB(next)
            return
        }
        if cursor.withLock({ $0.offset }) + size > journal.capacity { try checkpoint() }
        let (sequence, offset) = cursor.withLock { ($0.sequence + 1, $0.offset) }
        let record = LogJournal.record(sequence: sequence, of: operations, payloadSize: size - LogJournal.headerSize)
        do {
            try journal.append(record, at: offset)
        } catch {
            cursor.withLock { $0.failedAppend = true }
            throw error
        }
        cursor.withLock {
            $0.sequence = sequence
            $0.offset = offset + size
            if $0.pendingSince == nil { $0.pendingSince = .now }
        }
        state.withLock { $0 = next }
    }

    // MARK: Checkpoints

    /// When the journaled changes must go into LMDB, or nil when there are none.
    var checkpointDue: ContinuousClock.Instant? {
        cursor.withLock { $0.pendingSince.map { $0 + checkpointInterval } }
    }

    /// Checkpoints when the oldest journaled change has waited ``checkpointInterval``, or the
    /// journal or the entries held in memory have grown past a quarter of what they may hold.
    /// A failure is tried again an interval later: the journal keeps the changes meanwhile, and a
    /// write that finds the journal full meets the error.
    func checkpointIfDue() {
        guard let due = checkpointDue else { return }
        let offset = cursor.withLock { $0.offset }
        let held = state.withLock { $0.unflushed.count }
        guard due <= .now || offset > journal.capacity / 4 || held >= 4096 else { return }
        do {
            try checkpoint()
            if let recovered = checkpointTrouble.withLock({ $0.succeeded(at: .now) }) { logger.notice("\(recovered)") }
        } catch {
            cursor.withLock { $0.pendingSince = .now }
            let fill = Double(cursor.withLock { $0.offset }) / Double(journal.capacity)
            if let line = checkpointTrouble.withLock({ $0.failed(at: .now) }) {
                let full = DiskSpace.blame(error, at: path).map { "; \($0): free space there" } ?? ""
                logger.warning(
                    "cannot checkpoint the log's journal into LMDB at \(path) (\(line)): \(error)\(full). Writes go on until the journal fills (\(Int(fill * 100)) % now), then fail"
                )
            }
        }
    }

    /// Moves every journaled change into LMDB in one synced transaction and starts the journal over.
    func checkpoint() throws {
        guard cursor.withLock({ $0.sequence != $0.checkpointed || $0.failedAppend }) else { return }
        let started = ContinuousClock.now
        do {
            try writeToLMDB(state.withLock { $0 })
        } catch {
            metrics.checkpointFailures.increment()
            throw error
        }
        metrics.checkpointDuration.record(duration: started.duration(to: .now))
    }

    /// Makes LMDB hold `target` (every journal record written so far included), then publishes
    /// `target` with nothing left in memory only. LMDB records the last sequence it holds; after a
    /// failed record write it records that record's sequence too, so the bytes it may have left
    /// at the start of the journal are never replayed.
    private func writeToLMDB(_ target: State) throws {
        let (durable, checkpointed, sequence) = cursor.withLock {
            ($0.durable, $0.checkpointed, $0.failedAppend ? $0.sequence + 1 : $0.sequence)
        }
        // Counted before the commit and again when the result is published: a reader whose LMDB
        // read may have seen the commit sees the count move and reads again.
        let begun = state.withLock {
            $0.lmdbWrites += 1
            return $0.lmdbWrites
        }
        try environment.write { txn in
            try writeDifference(from: durable, to: target, txn: txn)
            // Only when it moved: one more key is one more page to write and flush.
            if sequence != checkpointed {
                var bytes: [UInt8] = []
                bytes.appendLittleEndian(sequence)
                try LMDBEnvironment.put(txn, metaDatabase, key: Self.journalSequenceKey, value: bytes)
            }
            if let faults, faults.strikes(.lmdbCommit) {
                throw LogFaults.error(.lmdb, "mdb_txn_commit")
            }
        }
        var flushed = target
        flushed.unflushed = []
        flushed.lmdbWrites = begun + 1
        cursor.withLock {
            $0.durable = flushed
            $0.sequence = sequence
            $0.checkpointed = sequence
            $0.failedAppend = false
            $0.offset = 0
            $0.pendingSince = nil
        }
        state.withLock { $0 = flushed }
    }

    /// The LMDB writes that turn what LMDB holds (`durable`) into `target`: entries masked by a
    /// truncation or compacted away are deleted, the unflushed ones put, the meta keys updated.
    private func writeDifference(from durable: State, to target: State, txn: OpaquePointer) throws {
        if durable.firstIndex <= durable.lastIndex {
            let masked = max(durable.firstIndex, target.unflushedStart)
            if masked <= durable.lastIndex {
                for index in masked...durable.lastIndex {
                    try LMDBEnvironment.delete(txn, entriesDatabase, key: Self.key(index))
                }
            }
            let compactedEnd = min(target.firstIndex, masked) - 1
            if durable.firstIndex <= min(compactedEnd, durable.lastIndex) {
                for index in durable.firstIndex...min(compactedEnd, durable.lastIndex) {
                    try LMDBEnvironment.delete(txn, entriesDatabase, key: Self.key(index))
                }
            }
        }
        for entry in target.unflushed {
            try putFrame(txn, entry)
        }
        if (durable.snapshotIndex, durable.snapshotTerm) != (target.snapshotIndex, target.snapshotTerm) {
            var snapshot = [UInt8]()
            snapshot.appendLittleEndian(target.snapshotIndex)
            snapshot.appendLittleEndian(target.snapshotTerm)
            try LMDBEnvironment.put(txn, metaDatabase, key: Self.snapshotKey, value: snapshot)
        }
        if durable.hardState != target.hardState {
            try LMDBEnvironment.put(txn, metaDatabase, key: Self.hardStateKey, value: target.hardState.frame())
        }
    }

    /// Writes an entry's frame straight into the page LMDB reserves for it (no intermediate buffer).
    private func putFrame(_ txn: OpaquePointer, _ entry: LogEntry) throws {
        let size = LogEntry.frameOverhead + entry.payload.count
        var key = entry.index.bigEndian
        try withUnsafeMutableBytes(of: &key) { keyBuffer in
            var k = MDB_val(mv_size: 8, mv_data: keyBuffer.baseAddress)
            var v = MDB_val(mv_size: size, mv_data: nil)
            try LMDBEnvironment.check(
                mdb_put(txn, entriesDatabase, &k, &v, UInt32(MDB_RESERVE | MDB_APPEND)), "mdb_put")
            LogEntry.writeFrame(
                into: UnsafeMutableRawBufferPointer(start: v.mv_data, count: size), index: entry.index,
                term: entry.term, kind: entry.kind, payload: entry.payload)
        }
    }

    // MARK: Replay

    /// Applies the journal's records that LMDB does not hold yet, then checkpoints them.
    func replayJournal() throws {
        let records = try journal.records(after: cursor.withLock { $0.checkpointed })
        guard let last = records.last else { return }
        var next = state.withLock { $0 }
        for record in records {
            for operation in try LogJournal.operations(in: record.payload, sequence: record.sequence) {
                var ignored: [LogWriter.Operation] = []
                do {
                    _ = try apply(operation, to: &next, resolved: &ignored)
                } catch let error as StoreError where error.code == .notContiguous {
                    throw StoreError(
                        .journal, "journal record \(record.sequence) does not fit the log: \(error.message)",
                        cause: error)
                }
            }
        }
        cursor.withLock { $0.sequence = last.sequence }
        try writeToLMDB(next)
    }

    // MARK: Operations on the state

    /// Applies one operation to the state the log will have and adds it to `resolved` as it is
    /// journaled (`appendNext` with its indexes assigned, a batch flattened). Throws
    /// `.notContiguous` before changing anything when the operation does not fit the log.
    func apply(_ operation: LogWriter.Operation, to s: inout State, resolved: inout [LogWriter.Operation]) throws
        -> LogWriter.Outcome
    {
        switch operation {
        case .append(let entries):
            guard let first = entries.first, first.index == s.lastIndex + 1 else {
                throw StoreError(
                    .notContiguous,
                    "append at \(entries.first?.index ?? 0) does not follow the last index \(s.lastIndex)")
            }
            for (offset, entry) in entries.enumerated() where entry.index != first.index + UInt64(offset) {
                throw StoreError(.notContiguous, "appended entries are not contiguous at \(entry.index)")
            }
            s.unflushed.append(contentsOf: entries)
            s.lastIndex = entries[entries.count - 1].index
            s.lastTerm = entries[entries.count - 1].term
            resolved.append(operation)
            return .done
        case .appendNext(let term, let kind, let payloads):
            let first = s.lastIndex + 1
            let entries = payloads.enumerated().map { offset, payload in
                LogEntry(index: first + UInt64(offset), term: term, kind: kind, payload: payload)
            }
            _ = try apply(.append(entries), to: &s, resolved: &resolved)
            return .appended(first...s.lastIndex)
        case .saveHardState(let hardState):
            s.hardState = hardState
            resolved.append(operation)
            return .done
        case .truncate(let index):
            guard index >= s.firstIndex else {
                throw StoreError(.notContiguous, "cannot truncate from \(index): the log starts at \(s.firstIndex)")
            }
            guard index <= s.lastIndex else { return .done }
            if index >= s.unflushedStart {
                s.unflushed.removeLast(Int(s.lastIndex - index + 1))
            } else {
                s.unflushed = []
            }
            s.lastIndex = index - 1
            s.lastTerm = try termOfLastEntry(s)
            resolved.append(operation)
            return .done
        case .compact(let index, let term):
            compact(&s, through: index, term: term)
            resolved.append(operation)
            return .done
        case .reset(let index, let term):
            guard index >= s.snapshotIndex else {
                throw StoreError(
                    .notContiguous, "cannot start the log over at \(index): it is compacted through \(s.snapshotIndex)")
            }
            s.unflushed = []
            s.lastIndex = s.snapshotIndex
            s.lastTerm = s.snapshotTerm
            compact(&s, through: index, term: term)
            resolved.append(operation)
            return .done
        case .batch(let operations):
            for operation in operations {
                do {
                    _ = try apply(operation, to: &s, resolved: &resolved)
                } catch let error as StoreError where error.code == .notContiguous {
                    // Not a skippable job error: the whole group is abandoned.
                    throw StoreError(.corruptEntry, "a replicated write does not fit the log: \(error.message)")
                }
            }
            return .done
        case .checkpoint:
            return .done
        }
    }

    /// Drops the entries through `index` and remembers (`index`, `term`) as the snapshot the log
    /// starts behind; nothing when the log is already compacted that far.
    private func compact(_ s: inout State, through index: UInt64, term: UInt64) {
        guard index > s.snapshotIndex else { return }
        if index >= s.lastIndex {
            s.unflushed = []
            s.lastIndex = index
            s.lastTerm = term
        } else if index >= s.unflushedStart {
            s.unflushed.removeFirst(Int(index - s.unflushedStart + 1))
        }
        s.snapshotIndex = index
        s.snapshotTerm = term
        s.firstIndex = index + 1
    }

    /// The term of the entry at `s.lastIndex`, wherever it is kept.
    private func termOfLastEntry(_ s: State) throws -> UInt64 {
        if s.lastIndex == s.snapshotIndex { return s.snapshotTerm }
        if let last = s.unflushed.last { return last.term }
        guard let entry = try durableEntries(in: s.lastIndex...s.lastIndex, maxCount: 1).first else {
            throw StoreError(.corruptEntry, "log entry \(s.lastIndex) is missing", index: s.lastIndex)
        }
        return entry.term
    }
}
