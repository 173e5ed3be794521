import Foundation
import TestSupport
import Testing

@testable import Store

/// The redo journal in front of LMDB: what a write acknowledged before any checkpoint becomes
/// after a crash. `closeWithoutCheckpoint()` stands for a crash: the writer thread stops without
/// a last checkpoint, so LMDB holds only what earlier checkpoints gave it.
@Suite struct LogJournalTests {
    func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1) -> [LogEntry] {
        range.map { LogEntry(index: $0, term: term, payload: Array("entry \($0)".utf8)) }
    }

    /// Flips the bits of `mask` in the journal's byte at `offset`.
    func flipJournalByte(_ dir: TemporaryDirectory, at offset: Int, mask: UInt8) throws {
        let journal = try FileHandle(forUpdating: URL(fileURLWithPath: dir.file("log/region.journal")))
        defer { try? journal.close() }
        try journal.seek(toOffset: UInt64(offset))
        let byte = try #require(try journal.read(upToCount: 1)).first!
        try journal.seek(toOffset: UInt64(offset))
        try journal.write(contentsOf: [byte ^ mask])
    }

    /// A store that never checkpoints by itself within a test.
    func openStore(_ dir: TemporaryDirectory, journalCapacity: Int = 4 << 20) throws -> LogStore {
        try LogStore(path: dir.file("log"), journalCapacity: journalCapacity, checkpointInterval: .seconds(3600))
    }

    /// The entries LMDB alone holds, read without the store (which would replay its journal).
    func lmdbOnly(_ dir: TemporaryDirectory) throws -> (lastIndex: UInt64, entries: [LogEntry]) {
        let environment = try LMDBEnvironment(path: dir.file("log"), initialMapSize: 1 << 20)
        let database = try environment.openDatabase(named: "region.entries")
        let all = try LogStore.storedEntries(environment, database, in: 1...UInt64.max, maxCount: .max)
        return (all.last?.index ?? 0, all)
    }

    @Test("writes acknowledged before any checkpoint are replayed from the journal after a crash")
    func replayAfterCrash() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...10))
            try await log.write(
                truncateFrom: 6, entries: entries(6...8, term: 2), hardState: HardState(term: 2, vote: "n1", commit: 7))
            try await log.compact(through: 3, term: 1)
            #expect(try log.entries(in: 4...8) == entries(4...5) + entries(6...8, term: 2))
            #expect(log.lastTerm == 2)
            log.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).lastIndex == 0, "LMDB was written before a checkpoint")
        do {
            let reopened = try openStore(dir)
            #expect(reopened.firstIndex == 4)
            #expect(reopened.lastIndex == 8)
            #expect(reopened.lastTerm == 2)
            #expect(reopened.snapshot == (3, 1))
            #expect(reopened.hardState == HardState(term: 2, vote: "n1", commit: 7))
            #expect(try reopened.entries(in: 4...8) == entries(4...5) + entries(6...8, term: 2))
            #expect(try reopened.verify() == 5)
            reopened.closeWithoutCheckpoint()
        }
        // Opening replayed the journal into LMDB.
        #expect(try lmdbOnly(dir).entries == entries(4...5) + entries(6...8, term: 2))
    }

    @Test("a truncation below the checkpointed entries hides them until the next checkpoint removes them")
    func truncationBelowCheckpoint() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...6))
            try await log.checkpoint()
            try await log.write(truncateFrom: 3, entries: entries(3...4, term: 5), hardState: nil)
            #expect(try log.entries(in: 1...10) == entries(1...2) + entries(3...4, term: 5))
            #expect(try log.term(at: 4) == 5)
            #expect(try log.entry(at: 5) == nil)
            log.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).entries == entries(1...6))
        do {
            let reopened = try openStore(dir)
            #expect(try reopened.entries(in: 1...10) == entries(1...2) + entries(3...4, term: 5))
            reopened.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).entries == entries(1...2) + entries(3...4, term: 5))
    }

    @Test("after a checkpoint the journal starts over and records of the earlier cycle are not replayed")
    func cycles() async throws {
        let dir = TemporaryDirectory()
        // Same-sized payloads: the second cycle's first record ends exactly where the first cycle's
        // second record begins, so only its older sequence stops the replay there.
        func fixed(_ range: ClosedRange<UInt64>, term: UInt64) -> [LogEntry] {
            range.map { LogEntry(index: $0, term: term, payload: [UInt8](repeating: UInt8($0), count: 16)) }
        }
        do {
            let log = try openStore(dir)
            try await log.append(fixed(1...5, term: 1))
            try await log.append(fixed(6...8, term: 1))
            try await log.checkpoint()
            #expect(log.cursor.withLock { $0.offset } == 0)
            try await log.append(fixed(9...13, term: 2))
            log.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).lastIndex == 8)
        let reopened = try openStore(dir)
        #expect(reopened.lastIndex == 13)
        #expect(try reopened.entries(in: 1...20) == fixed(1...8, term: 1) + fixed(9...13, term: 2))
    }

    @Test("a compaction and a start-over behind a snapshot reach LMDB through the journal")
    func compactionAndReset() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...10))
            try await log.checkpoint()
            try await log.compact(through: 4, term: 1)
            try await log.append(entries(11...11))
            log.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).lastIndex == 10)
        do {
            let reopened = try openStore(dir)
            #expect(reopened.firstIndex == 5)
            #expect(try reopened.entries(in: 5...11) == entries(5...11))
            try await reopened.write(
                snapshot: (20, 3), truncateFrom: nil, entries: entries(21...21, term: 3), hardState: nil)
            #expect(try reopened.entries(in: 21...30) == entries(21...21, term: 3))
            reopened.closeWithoutCheckpoint()
        }
        // Opening replayed the compaction into LMDB: entries 1-4 are gone from it.
        #expect(try lmdbOnly(dir).entries == entries(5...11))
        do {
            let again = try openStore(dir)
            #expect(again.snapshot == (20, 3))
            #expect(again.firstIndex == 21)
            #expect(again.lastIndex == 21)
            #expect(try again.entries(in: 21...21) == entries(21...21, term: 3))
            again.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).entries == entries(21...21, term: 3))
    }

    @Test("a damaged last record (a torn write) is dropped and the records before it are kept")
    func tornRecord() async throws {
        let dir = TemporaryDirectory()
        let end: Int
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...3))
            try await log.append(entries(4...6))
            end = log.cursor.withLock { $0.offset }
            log.closeWithoutCheckpoint()
        }
        // The second record's last byte never reached the disk.
        try flipJournalByte(dir, at: end - 1, mask: 0xff)

        let reopened = try openStore(dir)
        #expect(reopened.lastIndex == 3)
        #expect(try reopened.entries(in: 1...10) == entries(1...3))
        try await reopened.append(entries(4...4, term: 2))
        #expect(try reopened.entries(in: 1...10) == entries(1...3) + entries(4...4, term: 2))
    }

    @Test("a damaged record with a whole one after it is damage, not a torn write: the log does not open")
    func damagedRecordInTheMiddle() async throws {
        let dir = TemporaryDirectory()
        let secondEnd: Int
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...3))
            try await log.append(entries(4...6))
            secondEnd = log.cursor.withLock { $0.offset }
            try await log.append(entries(7...9))
            log.closeWithoutCheckpoint()
        }
        try flipJournalByte(dir, at: secondEnd - 1, mask: 0x01)

        do {
            _ = try openStore(dir)
            Issue.record("a log whose journal lost an acknowledged record in its middle opened")
        } catch let error as StoreError {
            #expect(error.code == .journal)
            #expect(error.message.contains("record 2 fails its checksum, yet record 3 after it is whole"), "\(error)")
            // What to do, on a single node too (it read as a region member's remedy only).
            #expect(error.message.hasSuffix(LogStore.damagedLogAdvice), "\(error)")
        }
    }

    @Test("a journal that goes on past what an emptied LMDB file took in says so: the log does not open")
    func lmdbBehindTheJournal() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...3))
            try await log.append(entries(4...6))
            try await log.checkpoint()
            try await log.append(entries(7...9))
            log.closeWithoutCheckpoint()
        }
        // LMDB's file replaced by an empty one: it no longer holds records 1 and 2.
        for name in ["data.mdb", "lock.mdb"] { try? FileManager.default.removeItem(atPath: dir.file("log/" + name)) }
        do {
            _ = try openStore(dir)
            Issue.record("a log whose LMDB file lost what it took in from the journal opened")
        } catch let error as StoreError {
            #expect(error.code == .journal)
            #expect(
                error.message.contains("has taken in the journal's records through 0")
                    && error.message.contains("goes on with record 3") && error.message.contains("data.mdb")
                    && error.message.hasSuffix(LogStore.damagedLogAdvice),
                "\(error)")
        }
    }

    @Test(
        "damage to a record's header (its magic, sequence or length) with a whole record after it is not read as a torn end",
        arguments: [0, 4, 12])
    func damagedHeaderInTheMiddle(byte: Int) async throws {
        let dir = TemporaryDirectory()
        let firstEnd: Int
        do {
            let log = try openStore(dir)
            try await log.append(entries(1...3))
            firstEnd = log.cursor.withLock { $0.offset }
            try await log.append(entries(4...6))
            try await log.append(entries(7...9))
            log.closeWithoutCheckpoint()
        }
        try flipJournalByte(dir, at: firstEnd + byte, mask: 0x01)

        do {
            _ = try openStore(dir)
            Issue.record("a log whose journal lost an acknowledged record to a damaged header opened")
        } catch let error as StoreError {
            #expect(error.code == .journal)
            #expect(error.message.contains("record 2 "), "\(error)")
            #expect(error.message.contains("yet record 3 after it is whole"), "\(error)")
        }
    }

    @Test("a torn last record followed by whole records of an earlier cycle is a torn end: the log opens")
    func tornRecordBeforeAnEarlierCycle() async throws {
        let dir = TemporaryDirectory()
        let end: Int
        do {
            let log = try openStore(dir)
            // The first cycle: a large record, then two small ones that the second cycle's short
            // records leave whole.
            try await log.append(
                (1...20).map { LogEntry(index: $0, term: 1, payload: [UInt8](repeating: 7, count: 100)) })
            try await log.append(entries(21...21))
            try await log.append(entries(22...22))
            try await log.checkpoint()
            try await log.append(entries(23...23))
            try await log.append(entries(24...24))
            end = log.cursor.withLock { $0.offset }
            log.closeWithoutCheckpoint()
        }
        try flipJournalByte(dir, at: end - 1, mask: 0xff)

        let reopened = try openStore(dir)
        #expect(reopened.lastIndex == 23)
        #expect(try reopened.entry(at: 23) == entries(23...23).first)
    }

    @Test("a record's size is known before it is encoded")
    func payloadSize() {
        let operations: [LogWriter.Operation] = [
            .append(entries(1...3)), .saveHardState(HardState(term: 3, vote: "n2", commit: 9)), .truncate(from: 2),
            .compact(through: 1, term: 1), .reset(snapshotIndex: 4, term: 2), .append([]),
        ]
        #expect(
            LogJournal.recordSize(payloadSize: LogJournal.payloadSize(of: operations))
                == LogJournal.record(sequence: 1, of: operations).count)
    }

    @Test("a group larger than the journal goes straight into LMDB")
    func oversizedGroup() async throws {
        let dir = TemporaryDirectory()
        let big = (1...64).map { LogEntry(index: UInt64($0), term: 1, payload: [UInt8](repeating: 9, count: 200)) }
        do {
            let log = try openStore(dir, journalCapacity: 4096)
            try await log.append(big)
            try await log.append(entries(65...66))
            #expect(try log.entries(in: 1...66) == big + entries(65...66))
            log.closeWithoutCheckpoint()
        }
        #expect(try lmdbOnly(dir).entries == big)
        let reopened = try openStore(dir, journalCapacity: 4096)
        #expect(try reopened.entries(in: 1...66) == big + entries(65...66))
    }

    @Test("the writer checkpoints by itself once the interval has passed")
    func checkpointsByItself() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"), checkpointInterval: .milliseconds(20))
        try await log.append(entries(1...4))
        let deadline = ContinuousClock.now + .seconds(10)
        while log.cursor.withLock({ $0.checkpointed }) == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(log.cursor.withLock { $0.checkpointed } == 1)
        #expect(log.state.withLock { $0.unflushed.isEmpty })
        #expect(try log.entries(in: 1...4) == entries(1...4))
    }
}
