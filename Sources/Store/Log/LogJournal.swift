import Foundation

/// The redo journal in front of one group's LMDB log: a preallocated file to which each writer
/// group is appended as one checksummed record and fdatasynced before its callers hear back.
///
/// LMDB gets the same changes later, in one synced transaction per checkpoint, and the journal then
/// starts again at its beginning. A write thus costs one sequential flush of a few blocks instead of
/// LMDB's scattered pages plus its meta page (BENCHMARKS.md, bench/region).
///
/// A record is `magic u32 | sequence u64 | length u32 | crc32c u32 | payload`, integers
/// little-endian; the checksum covers the sequence, the length and the payload. The records of one
/// cycle carry consecutive sequences from offset 0, and LMDB remembers the last sequence it holds,
/// so reading stops at the first record that is torn, damaged or left from an earlier cycle.
final class LogJournal: Sendable {
    static let magic: UInt32 = 0x314A_5744  // "DWJ1"
    static let headerSize = 4 + 8 + 4 + 4

    let path: String
    /// Bytes preallocated; a cycle's records must fit in them.
    let capacity: Int
    private let descriptor: Int32
    /// Failures a test injects into record writes; nil in the product.
    private let faults: LogFaults?

    /// Opens the journal at `path`, creating it and writing `capacity` zero bytes when it is new or
    /// shorter. Written zeros, not `fallocate`: overwriting blocks that exist needs no metadata
    /// update, so an fdatasync flushes the record's blocks alone.
    init(path: String, capacity: Int, faults: LogFaults? = nil) throws {
        self.path = path
        self.capacity = capacity
        self.faults = faults
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Self.failure("cannot open the journal \(path)") }
        do {
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { throw Self.failure("cannot stat the journal \(path)") }
            if Int(info.st_size) < capacity {
                let zeros = [UInt8](repeating: 0, count: 1 << 20)
                var offset = Int(info.st_size)
                while offset < capacity {
                    try write(Array(zeros.prefix(min(zeros.count, capacity - offset))), at: offset)
                    offset += min(zeros.count, capacity - offset)
                }
                guard fsync(descriptor) == 0 else { throw Self.failure("cannot fsync the journal \(path)") }
                let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_CLOEXEC)
                if directory >= 0 {
                    _ = fsync(directory)
                    close(directory)
                }
            }
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit {
        close(descriptor)
    }

    /// The bytes a record with `payloadSize` bytes of payload takes.
    static func recordSize(payloadSize: Int) -> Int { headerSize + payloadSize }

    /// Writes one record (``record(sequence:of:payloadSize:)``) at `offset` and waits until it is on disk.
    func append(_ record: [UInt8], at offset: Int) throws {
        precondition(offset + record.count <= capacity, "a journal record overflows")
        if let faults, faults.strikes(.journalWrite) {
            try write(Array(record.prefix(record.count / 2)), at: offset)
            throw LogFaults.error(.journal, "cannot write the journal \(path)")
        }
        try write(record, at: offset)
        if let faults, faults.strikes(.journalSync) {
            throw LogFaults.error(.journal, "cannot fdatasync the journal \(path)")
        }
        guard fdatasync(descriptor) == 0 else { throw Self.failure("cannot fdatasync the journal \(path)") }
    }

    /// The payloads of the records that follow `sequence` without a gap, from the start of the file.
    /// Records are read one by one up to the end of the file, which may be longer than `capacity`
    /// when an earlier run had a larger one; after a clean close the first header already stops it.
    /// The first record that is missing, torn or older ends them: the last one, torn by a crash
    /// while it was written, was never acknowledged. But each record is synced before the next is
    /// written, so a whole record of a later sequence anywhere beyond that point means the stop is
    /// damage (to a payload or to a header), not a torn write: an error, since the acknowledged
    /// writes it holds would be lost.
    func records(after sequence: UInt64) throws -> [(sequence: UInt64, payload: [UInt8])] {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Self.failure("cannot stat the journal \(path)") }
        let size = Int(info.st_size)
        var result: [(sequence: UInt64, payload: [UInt8])] = []
        var offset = 0
        var expected = sequence + 1
        var stop: (sequence: UInt64, payload: [UInt8], intact: Bool)?
        while true {
            stop = try readRecord(at: offset, size: size)
            guard let record = stop, record.sequence == expected, record.intact else { break }
            result.append((expected, record.payload))
            expected += 1
            offset += Self.headerSize + record.payload.count
        }
        if let stop, stop.intact, stop.sequence > expected {
            // Whole, in its place, of a later sequence: the journal went on past records that
            // LMDB took in and no longer holds.
            throw StoreError(
                .journal,
                "the log's LMDB file (\(URL(fileURLWithPath: path).deletingLastPathComponent().path)/data.mdb) has taken in the journal's records through \(expected - 1), but the journal \(path) goes on with record \(stop.sequence): records \(expected)–\(stop.sequence - 1), moved into LMDB, are gone from it (data.mdb replaced, emptied or restored from an older copy?); it held acknowledged writes, so the log does not open. \(LogStore.damagedLogAdvice)"
            )
        }
        if let later = try wholeRecord(from: offset, sequenceAtLeast: expected, size: size) {
            let what =
                if let stop, stop.sequence == expected, !stop.intact {
                    "fails its checksum"
                } else {
                    "cannot be read at byte \(offset) (its header is damaged)"
                }
            throw StoreError(
                .journal,
                "the journal \(path) is damaged: record \(expected) \(what), yet record \(later.sequence) after it is whole (at byte \(later.offset)); it holds acknowledged writes, so the log does not open. \(LogStore.damagedLogAdvice)"
            )
        }
        return result
    }

    /// The first whole record that starts at or after `start` with a sequence of `minimum` or
    /// later, found by its magic at any byte (a damaged length hides where records start).
    /// Records of earlier cycles carry older sequences and do not count.
    private func wholeRecord(from start: Int, sequenceAtLeast minimum: UInt64, size: Int) throws -> (
        sequence: UInt64, offset: Int
    )? {
        guard start + Self.headerSize <= size else { return nil }
        var tail = [UInt8](repeating: 0, count: size - start)
        guard try read(into: &tail, at: start) else { return nil }
        return tail.withUnsafeBytes { raw -> (sequence: UInt64, offset: Int)? in
            let base = raw.baseAddress!
            let lastStart = raw.count - Self.headerSize
            var position = 0
            while position <= lastStart {
                guard let hit = memchr(base + position, Int32(Self.magic & 0xff), lastStart - position + 1) else {
                    return nil
                }
                position = UnsafeRawPointer(hit) - base
                defer { position += 1 }
                guard raw.loadLittleEndian(UInt32.self, at: position) == Self.magic else { continue }
                let sequence = raw.loadLittleEndian(UInt64.self, at: position + 4)
                let length = Int(raw.loadLittleEndian(UInt32.self, at: position + 12))
                let payloadStart = position + Self.headerSize
                guard sequence >= minimum, length <= raw.count - payloadStart else { continue }
                let header = UnsafeRawBufferPointer(rebasing: raw[position..<payloadStart])
                let payload = UnsafeRawBufferPointer(rebasing: raw[payloadStart..<(payloadStart + length)])
                if Self.checksum(header: header, payload: payload)
                    == raw.loadLittleEndian(UInt32.self, at: position + 16)
                {
                    return (sequence, start + position)
                }
            }
            return nil
        }
    }

    /// The record at `offset`: its sequence, its payload, and whether it passes its checksum; nil
    /// when none starts there (no magic, or it runs past the end of the file).
    private func readRecord(at offset: Int, size: Int) throws -> (sequence: UInt64, payload: [UInt8], intact: Bool)? {
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        guard offset + Self.headerSize <= size, try read(into: &header, at: offset) else { return nil }
        let (magic, sequence, length, stored) = header.withUnsafeBytes { raw in
            (
                raw.loadLittleEndian(UInt32.self, at: 0), raw.loadLittleEndian(UInt64.self, at: 4),
                Int(raw.loadLittleEndian(UInt32.self, at: 12)), raw.loadLittleEndian(UInt32.self, at: 16)
            )
        }
        guard magic == Self.magic, offset + Self.headerSize + length <= size else { return nil }
        var payload = [UInt8](repeating: 0, count: length)
        guard try read(into: &payload, at: offset + Self.headerSize) else { return nil }
        let checksum = header.withUnsafeBytes { header in
            payload.withUnsafeBytes { Self.checksum(header: header, payload: $0) }
        }
        return (sequence, payload, stored == checksum)
    }

    /// A record's checksum: its sequence and length (bytes 4..<16 of `header`), then its payload.
    static func checksum(header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(payload, continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: header[4..<16])))
    }

    /// Fills `bytes` from `offset`; false when the file ends first.
    private func read(into bytes: inout [UInt8], at offset: Int) throws -> Bool {
        var done = 0
        while done < bytes.count {
            let read = bytes.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            }
            if read < 0 && errno == EINTR { continue }
            guard read >= 0 else { throw Self.failure("cannot read the journal \(path)") }
            if read == 0 { return false }
            done += read
        }
        return true
    }

    private func write(_ bytes: [UInt8], at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                pwrite(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw Self.failure("cannot write the journal \(path)") }
            done += written
        }
    }

    private static func failure(_ message: String) -> StoreError {
        let code = errno
        return StoreError(
            .journal, "\(message): \(String(cString: strerror(code)))",
            cause: POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO))
    }
}
