import Foundation
import TestSupport
import Testing

@testable import Store

@Suite struct LogStoreTests {
    func entries(_ range: ClosedRange<UInt64>, term: UInt64 = 1) -> [LogEntry] {
        range.map { LogEntry(index: $0, term: term, payload: Array("entry \($0)".utf8)) }
    }

    @Test("appended entries read back in order, and survive reopening")
    func appendAndRead() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try LogStore(path: dir.file("log"))
            try await log.append(entries(1...10))
            try await log.append(entries(11...12, term: 2))
            #expect(log.lastIndex == 12)
            #expect(log.lastTerm == 2)
            #expect(try log.entries(in: 3...5) == entries(3...5))
            #expect(try log.entries(in: 1...100, maxCount: 4).count == 4)
            #expect(try log.entry(at: 13) == nil)
            #expect(try log.term(at: 12) == 2)
        }
        let reopened = try LogStore(path: dir.file("log"))
        #expect(reopened.firstIndex == 1)
        #expect(reopened.lastIndex == 12)
        #expect(reopened.lastTerm == 2)
        #expect(try reopened.entries(in: 1...12) == entries(1...10) + entries(11...12, term: 2))
        #expect(try reopened.verify() == 12)
    }

    @Test("a log is claimed once in a process: a second claim waits for the first to go, or fails naming the log")
    func oneClaimPerLog() throws {
        let dir = TemporaryDirectory()
        var first: OpenLogClaim? = try OpenLogClaim(path: dir.file("log"), group: "region")
        // Another group of the same directory, or the same log under another spelling of its path.
        _ = try OpenLogClaim(path: dir.file("log"), group: "global")
        #expect(throws: StoreError.self) {
            try OpenLogClaim(path: dir.file("log") + "/.", group: "region", patience: .milliseconds(100))
        }
        withExtendedLifetime(first) {}
        first = nil
        _ = try OpenLogClaim(path: dir.file("log"), group: "region", patience: .milliseconds(100))
        // A store holds its claim until its writer thread ends; reopened at once, it waits for that.
        for _ in 0..<20 {
            let log = try LogStore(path: dir.file("reopened"))
            _ = log
        }
    }

    @Test("entries with an empty payload (leader no-ops) round-trip")
    func emptyPayload() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"))
        let noop = LogEntry(index: 1, term: 3, kind: .noop, payload: [])
        try await log.append([noop])
        _ = try await log.appendNext(term: 3, kind: .noop, payloads: [[]])
        #expect(try log.entries(in: 1...2) == [noop, LogEntry(index: 2, term: 3, kind: .noop, payload: [])])
        #expect(try noop.frame().withUnsafeBytes { try LogEntry(index: 1, frame: $0) } == noop)
    }

    @Test("an append that does not follow the last index is refused and writes nothing")
    func notContiguous() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"))
        try await log.append(entries(1...3))
        await #expect(throws: StoreError.self) { try await log.append(entries(5...6)) }
        await #expect(throws: StoreError.self) { try await log.append(entries(3...3)) }
        #expect(log.lastIndex == 3)
        #expect(try log.entries(in: 1...10).count == 3)
    }

    @Test("concurrent appendNext calls get distinct, contiguous indexes (group commit)")
    func groupCommit() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"))
        let ranges = try await withThrowingTaskGroup(of: ClosedRange<UInt64>.self) { group in
            for i in 0..<200 {
                group.addTask {
                    try await log.appendNext(term: 1, payloads: [Array("p\(i)".utf8), Array("q\(i)".utf8)])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
        #expect(sorted.first?.lowerBound == 1)
        #expect(sorted.last?.upperBound == 400)
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.upperBound + 1 == b.lowerBound) }
        #expect(try log.verify() == 400)
    }

    @Test("truncating a suffix removes it and the log continues from there")
    func truncate() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"))
        try await log.append(entries(1...10))
        try await log.truncate(from: 6)
        #expect(log.lastIndex == 5)
        #expect(try log.entry(at: 6) == nil)
        try await log.append(entries(6...7, term: 3))
        #expect(try log.term(at: 7) == 3)
        #expect(log.lastTerm == 3)
    }

    @Test("compacting a prefix remembers the snapshot and refuses reads below it")
    func compact() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try LogStore(path: dir.file("log"))
            try await log.append(entries(1...10, term: 4))
            try await log.compact(through: 6, term: 4)
            #expect(log.firstIndex == 7)
            #expect(try log.term(at: 6) == 4)
            #expect(try log.entries(in: 7...10).count == 4)
            #expect {
                try log.entries(in: 2...10)
            } throws: { error in
                guard let e = error as? StoreError else { return false }
                return e.code == .compacted && e.message.contains("re-list from index 7")
            }
        }
        let reopened = try LogStore(path: dir.file("log"))
        #expect(reopened.firstIndex == 7)
        #expect(reopened.lastIndex == 10)
        #expect(reopened.snapshot.index == 6)
    }

    @Test("the hard state is saved durably")
    func hardState() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try LogStore(path: dir.file("log"))
            try await log.saveHardState(HardState(term: 7, vote: "n2", commit: 3))
        }
        #expect(try LogStore(path: dir.file("log")).hardState == HardState(term: 7, vote: "n2", commit: 3))
    }

    @Test("the memory map grows when full instead of failing")
    func mapGrows() async throws {
        let dir = TemporaryDirectory()
        let log = try LogStore(path: dir.file("log"), initialMapSize: 256 << 10)
        let before = log.mapSize
        let payload = [UInt8](repeating: 7, count: 4096)
        var next: UInt64 = 1
        for _ in 0..<40 {
            let batch = (next..<(next + 64)).map { LogEntry(index: $0, term: 1, payload: payload) }
            try await log.append(batch)
            next += 64
        }
        #expect(log.mapSize > before)
        #expect(log.lastIndex == 2560)
        #expect(try log.verify() == 2560)
    }

    @Test(
        "a damaged entry is reported with its index, never returned; met by a read of the running store, it is logged too (a line a minute), by the start's verify not"
    )
    func detectsDamage() async throws {
        let dir = TemporaryDirectory()
        let recorded = RecordedLog()
        let log = try LogStore(path: dir.file("log"), logger: recorded.logger)
        try await log.append(entries(1...5))
        try await log.checkpoint()
        // Flip one payload byte of entry 3 behind the store's back.
        var frame = try log.environment.read { txn in
            try log.environment.get(txn, log.entriesDatabase, key: LogStore.key(3))!
        }
        frame[16] ^= 0x40
        try log.environment.write { txn in
            try LMDBEnvironment.put(txn, log.entriesDatabase, key: LogStore.key(3), value: frame)
        }
        #expect(try log.entries(in: 1...2).count == 2)
        func isDamageOf3(_ error: any Error) -> Bool {
            guard let e = error as? StoreError else { return false }
            return e.code == .corruptEntry && e.index == 3 && e.message.contains("log entry 3 is damaged")
        }
        #expect(performing: { _ = try log.verify() }, throws: isDamageOf3)
        // The verify says nothing (its caller, the node's start, says it); a read does.
        #expect(recorded.lines.isEmpty, "\(recorded.lines)")
        #expect(performing: { _ = try log.entries(in: 1...5) }, throws: isDamageOf3)
        // A second read within the minute says nothing more.
        #expect(throws: StoreError.self) { try log.entries(in: 3...3) }
        let said = recorded.lines.filter { $0.contains("is damaged") }
        #expect(said.count == 1)
        #expect(said.first?.hasPrefix("error the log in \(dir.file("log")) is damaged: log entry 3 is damaged") == true)
        #expect(said.first?.contains("the next start refuses the log") == true)
    }

    @Test("a damaged or missing snapshot record stops the log from opening, rather than leaving a gap behind it")
    func damagedSnapshotRecord() async throws {
        let dir = TemporaryDirectory()
        /// A log compacted through 5 of its 10 entries, then `damage`d behind the store's back.
        func compactedLog(_ name: String, damage: (LogStore, OpaquePointer) throws -> Void) async throws -> String {
            let log = try LogStore(path: dir.file(name))
            try await log.append(entries(1...10))
            try await log.compact(through: 5, term: 1)
            try await log.checkpoint()
            #expect(log.firstIndex == 6 && log.snapshot.index == 5)
            try log.environment.write { try damage(log, $0) }
            return log.path
        }
        let cases = [
            (
                try await compactedLog("short") { log, txn in
                    try LMDBEnvironment.put(txn, log.metaDatabase, key: LogStore.snapshotKey, value: [5, 0, 0])
                }, "the log's snapshot record is damaged (3 bytes, not 16)"
            ),
            (
                try await compactedLog("past") { log, txn in
                    try LMDBEnvironment.put(
                        txn, log.metaDatabase, key: LogStore.snapshotKey, value: [UInt8](repeating: 0xff, count: 16))
                }, "the log's snapshot record is damaged (index 18446744073709551615"
            ),
            (
                try await compactedLog("sequence") { log, txn in
                    try LMDBEnvironment.put(
                        txn, log.metaDatabase, key: LogStore.journalSequenceKey,
                        value: [UInt8](repeating: 0xff, count: 8))
                }, "the log's journal sequence record is damaged (18446744073709551615)"
            ),
            (
                try await compactedLog("missing") { log, txn in
                    try LMDBEnvironment.delete(txn, log.metaDatabase, key: LogStore.snapshotKey)
                }, "the log's first entry is 6 but its snapshot record says 0"
            ),
        ]
        for (path, message) in cases {
            #expect {
                _ = try LogStore(path: path)
            } throws: { error in
                (error as? StoreError)?.code == .corruptEntry && "\(error)".contains(message)
            }
        }
    }

    @Test("an entry frame of an unknown version is refused, naming the entry")
    func unknownFrameVersion() throws {
        var frame = LogEntry(index: 9, term: 1, payload: [1, 2, 3]).frame()
        frame[0] = 2
        let checksum = LogEntry.checksum(index: 9, frame: Array(frame.dropLast(4)))
        frame.replaceSubrange((frame.count - 4)..., with: withUnsafeBytes(of: checksum.littleEndian, Array.init))
        #expect {
            try frame.withUnsafeBytes { try LogEntry(index: 9, frame: $0) }
        } throws: { error in
            (error as? StoreError)?.code == .unsupportedVersion
                && (error as? StoreError)?.message.contains("log entry 9") == true
        }
    }

    @Test("an entry of a term past the largest a log keeps is refused as damaged, though its checksum holds")
    func termPastTheLargest() throws {
        var frame = LogEntry(index: 9, term: 1, payload: [1, 2, 3]).frame()
        frame.replaceSubrange(2..<10, with: [UInt8](repeating: 0xff, count: 8))
        let checksum = LogEntry.checksum(index: 9, frame: Array(frame.dropLast(4)))
        frame.replaceSubrange((frame.count - 4)..., with: withUnsafeBytes(of: checksum.littleEndian, Array.init))
        #expect {
            try frame.withUnsafeBytes { try LogEntry(index: 9, frame: $0) }
        } throws: { error in
            (error as? StoreError)?.code == .corruptEntry && "\(error)".contains("past 9223372036854775807")
        }
    }

    @Test("CRC-32C matches the standard check value")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let long = [UInt8]((0..<1000).map { UInt8($0 & 0xff) })
        #expect(
            CRC32C.checksum(Array(long[500...]), continuing: CRC32C.checksum(Array(long[..<500])))
                == CRC32C.checksum(long))
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000] {
            let bytes = Array(long.prefix(length))
            #expect(bytes.withUnsafeBytes { CRC32C.software($0) } == CRC32C.checksum(bytes))
            #expect(
                bytes.withUnsafeBytes { CRC32C.software($0, continuing: 0x1234) }
                    == CRC32C.checksum(bytes, continuing: 0x1234))
        }
        #expect(
            "123456789".utf8.withContiguousStorageIfAvailable { CRC32C.software(UnsafeRawBufferPointer($0)) }
                == 0xE306_9283)
    }
}
