import Foundation
import MetricsTestKit
import Synchronization
import TestSupport
import Testing

@testable import Store

/// The log when its disk fails: a journal record torn or not flushed, a checkpoint that cannot
/// commit. A failed write fails its own callers and nobody else's, nothing acknowledged is ever
/// lost, and the log goes on once the disk works again. Faults come from ``LogFaults``;
/// `closeWithoutCheckpoint()` stands for a crash.
@Suite struct LogFaultTests {
    func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1, tag: String = "entry") -> [LogEntry] {
        range.map { LogEntry(index: $0, term: term, payload: Array("\(tag) \($0)".utf8)) }
    }

    func openStore(_ dir: TemporaryDirectory, faults: LogFaults? = nil, journalCapacity: Int = 4 << 20) throws
        -> LogStore
    {
        try LogStore(
            path: dir.file("log"), journalCapacity: journalCapacity, checkpointInterval: .seconds(3600),
            faults: faults)
    }

    /// A store holding 1...10 whose next append, of `failing`, met the fault at `point`.
    func storeAfterFailedAppend(_ dir: TemporaryDirectory, _ point: LogFaults.Point, failing: [LogEntry])
        async throws -> LogStore
    {
        let faults = LogFaults()
        let log = try openStore(dir, faults: faults)
        try await log.append(entries(1...10))
        faults.arm(point)
        await #expect(throws: StoreError.self) { try await log.append(failing) }
        return log
    }

    @Test(
        "a journal record whose flush or write fails fails its group only; the retry is what a crash keeps",
        arguments: [LogFaults.Point.journalSync, .journalWrite])
    func failedRecordThenRetry(point: LogFaults.Point) async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try await storeAfterFailedAppend(dir, point, failing: entries(11...12, tag: "failed"))
            // Nothing of the failed group is visible, and the same indexes can be written again.
            #expect(log.lastIndex == 10)
            #expect(try log.entries(in: 1...20) == entries(1...10))
            try await log.append(entries(11...13, tag: "retried"))
            log.closeWithoutCheckpoint()
        }
        let reopened = try openStore(dir)
        #expect(try reopened.entries(in: 1...20) == entries(1...10) + entries(11...13, tag: "retried"))
        #expect(try reopened.verify() == 13)
    }

    @Test(
        "a data file cut short is an error when the log is opened or read, not a crash on a read past its end"
    )
    func truncatedDataFileIsRefused() async throws {
        let dir = TemporaryDirectory()
        let log = try openStore(dir)
        let big = (1...400).map {
            LogEntry(index: $0, term: 1, payload: Array(repeating: UInt8($0 % 251), count: 2_000))
        }
        try await log.append(big)
        try await log.checkpoint()
        log.close()
        let file = dir.file("log") + "/data.mdb"
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        try #require(size > 200_000, "the entries fill pages: \(size)")
        #expect(truncate(file, 20_000) == 0)
        // An error, from opening or from reading every entry, and no SIGBUS.
        #expect(throws: StoreError.self) {
            let reopened = try openStore(dir)
            try reopened.verify()
        }
    }

    @Test("a crash right after a torn record keeps exactly what was acknowledged")
    func crashAfterTornRecord() async throws {
        let dir = TemporaryDirectory()
        try await storeAfterFailedAppend(dir, .journalWrite, failing: entries(11...40, tag: "torn"))
            .closeWithoutCheckpoint()
        let reopened = try openStore(dir)
        #expect(reopened.lastIndex == 10)
        #expect(try reopened.entries(in: 1...50) == entries(1...10))
        try await reopened.append(entries(11...11))
        #expect(reopened.lastIndex == 11)
    }

    @Test("a crash right after a failed flush keeps what was acknowledged, and the failed group whole or not at all")
    func crashAfterFailedFlush() async throws {
        let dir = TemporaryDirectory()
        try await storeAfterFailedAppend(dir, .journalSync, failing: entries(11...12, tag: "unflushed"))
            .closeWithoutCheckpoint()
        // The record's bytes reached the page cache, so the process crash keeps them: an
        // unacknowledged write may survive (its callers were told it failed, not that it was lost).
        let reopened = try openStore(dir)
        let found = try reopened.entries(in: 1...20)
        #expect(found == entries(1...10) || found == entries(1...10) + entries(11...12, tag: "unflushed"))
        #expect(try reopened.verify() == found.count)
    }

    @Test("a checkpoint that fails leaves the changes in the journal; a full journal refuses writes until one succeeds")
    func failedCheckpoints() async throws {
        let dir = TemporaryDirectory()
        let faults = LogFaults()
        var acknowledged: [LogEntry] = []
        do {
            // 16 KiB of journal: about a hundred of these records.
            let log = try openStore(dir, faults: faults, journalCapacity: 16 << 10)
            try await log.append(entries(1...5))
            acknowledged += entries(1...5)
            faults.arm(.lmdbCommit, times: 1_000)
            await #expect(throws: StoreError.self) { try await log.checkpoint() }
            // The requested checkpoint failed, not the writes: they still read back.
            #expect(try log.entries(in: 1...5) == acknowledged)
            var refused: StoreError?
            for index in UInt64(6)...UInt64(1_000) {
                do {
                    try await log.append(entries(index...index))
                    acknowledged += entries(index...index)
                } catch let error as StoreError {
                    refused = error
                    break
                }
            }
            #expect(
                refused?.code == .lmdb, "the journal filled up without refusing a write: \(String(describing: refused))"
            )
            #expect(acknowledged.count > 50)
            #expect(log.lastIndex == UInt64(acknowledged.count))
            // The disk works again: the next write checkpoints and goes through.
            faults.disarm()
            let next = UInt64(acknowledged.count + 1)
            try await log.append(entries(next...next))
            acknowledged += entries(next...next)
            #expect(log.cursor.withLock { $0.sequence == $0.checkpointed + 1 })
            log.closeWithoutCheckpoint()
        }
        let reopened = try openStore(dir)
        #expect(try reopened.entries(in: 1...UInt64.max) == acknowledged)
    }

    @Test("a crash while checkpoints fail replays every acknowledged write from the journal")
    func crashWhileCheckpointsFail() async throws {
        let dir = TemporaryDirectory()
        let faults = LogFaults()
        do {
            let log = try openStore(dir, faults: faults)
            try await log.append(entries(1...4))
            try await log.checkpoint()
            faults.arm(.lmdbCommit, times: 10)
            try await log.write(
                truncateFrom: 3, entries: entries(3...6, term: 2), hardState: HardState(term: 2, vote: "n2", commit: 5))
            await #expect(throws: StoreError.self) { try await log.checkpoint() }
            try await log.append(entries(7...8, term: 2))
            log.closeWithoutCheckpoint()
        }
        let reopened = try openStore(dir)
        #expect(try reopened.entries(in: 1...20) == entries(1...2) + entries(3...8, term: 2))
        #expect(reopened.hardState == HardState(term: 2, vote: "n2", commit: 5))
    }

    @Test("a range read that a truncation's checkpoint overtakes reads again instead of mixing two moments")
    func readOvertakenByCheckpoint() async throws {
        let dir = TemporaryDirectory()
        let faults = LogFaults()
        let log = try openStore(dir, faults: faults)
        try await log.append(entries(1...100))
        try await log.checkpoint()
        try await log.append(entries(101...105))
        // The read takes the state (LMDB below 101, memory from 101), then stops before its LMDB
        // read while a new leader's entries replace 90 on and are checkpointed.
        let paused = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
        faults.pauseOnceBeforeDurableRead {
            paused.signal()
            resume.wait()
        }
        let result = Mutex<Result<[LogEntry], any Error>?>(nil)
        let reader = Thread { result.withLock { $0 = Result { try log.entries(in: 80...105) } } }
        reader.start()
        await Task.detached { paused.wait() }.value
        try await log.write(truncateFrom: 90, entries: entries(90...92, term: 2), hardState: nil)
        try await log.checkpoint()
        resume.signal()
        while result.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(5)) }
        let found = try result.withLock { $0! }.get()
        // Without the second read: 80...89, 90...92 of term 2, then 101...105 of term 1.
        #expect(found == entries(80...89) + entries(90...92, term: 2))
    }

    @Test("whenDurable runs once a write is on disk and readable, before the write returns; never for a failed one")
    func whenDurable() async throws {
        let dir = TemporaryDirectory()
        let faults = LogFaults()
        let log = try openStore(dir, faults: faults)
        let seen = Mutex<[UInt64]>([])
        try await log.write(
            truncateFrom: nil, entries: entries(1...3), hardState: nil,
            whenDurable: { seen.withLock { $0.append(log.lastIndex) } })
        #expect(seen.withLock { $0 } == [3])
        faults.arm(.journalSync)
        await #expect(throws: StoreError.self) {
            try await log.write(
                truncateFrom: nil, entries: self.entries(4...4), hardState: nil,
                whenDurable: { seen.withLock { $0.append(log.lastIndex) } })
        }
        #expect(seen.withLock { $0 } == [3])
        // Nothing to write is durable at once.
        try await log.write(
            truncateFrom: nil, entries: [], hardState: nil, whenDurable: { seen.withLock { $0.append(0) } })
        #expect(seen.withLock { $0 } == [3, 0])
    }

    @Test("the metrics count the entries each write appends, failed writes and checkpoints, and time both")
    func metrics() async throws {
        let dir = TemporaryDirectory()
        let recorded = TestMetrics()
        let faults = LogFaults()
        let log = try LogStore(
            path: dir.file("log"), checkpointInterval: .seconds(3600), metrics: LogMetrics(factory: recorded),
            faults: faults)
        try await log.append(entries(1...10))
        // A new leader's entries replace the last six: the last index falls, three entries are written.
        try await log.write(truncateFrom: 5, entries: entries(5...7, term: 2), hardState: nil)
        faults.arm(.journalSync)
        await #expect(throws: StoreError.self) { try await log.append(self.entries(8...9, term: 2)) }
        try await log.checkpoint()
        try await log.append(entries(8...8, term: 2))
        faults.arm(.lmdbCommit)
        await #expect(throws: StoreError.self) { try await log.checkpoint() }
        #expect(try recorded.expectCounter("dwcp_log_checkpoint_failures_total").totalValue == 1)
        #expect(try recorded.expectCounter("dwcp_log_entries_written_total").totalValue == 14)
        #expect(try recorded.expectTimer("dwcp_log_write_duration_seconds").values.count == 3)
        #expect(try recorded.expectCounter("dwcp_log_write_failures_total").totalValue == 1)
        #expect(try recorded.expectTimer("dwcp_log_checkpoint_duration_seconds").values.count == 1)
    }
}
