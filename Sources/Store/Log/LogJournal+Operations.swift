/// How a writer group's operations are written into a journal record and read back.
///
/// Only resolved operations are journaled: `appendNext` has become `append` with its indexes, a
/// `batch` has been flattened (the record is all or nothing by itself), `checkpoint` is not data.
/// Each operation is a tag byte and its fields, little-endian; entries keep their stored frame,
/// checksum included, so a replayed entry is verified like one read from LMDB.
extension LogJournal {
    private enum Tag: UInt8 {
        case append = 1
        case saveHardState = 2
        case truncate = 3
        case compact = 4
        case reset = 5
    }

    /// The exact size of a record's payload (``record(sequence:of:payloadSize:)`` less its header),
    /// without encoding.
    static func payloadSize(of operations: [LogWriter.Operation]) -> Int {
        operations.reduce(4) { size, operation in
            switch operation {
            case .append(let entries):
                return entries.reduce(size + 1 + 4) { $0 + 8 + 4 + LogEntry.frameOverhead + $1.payload.count }
            case .saveHardState(let state):
                return size + 1 + 4 + state.frame().count
            case .truncate:
                return size + 1 + 8
            case .compact, .reset:
                return size + 1 + 16
            case .appendNext, .batch, .checkpoint:
                preconditionFailure("only resolved operations are journaled")
            }
        }
    }

    /// The whole record of `operations` with `sequence`, header and checksum included, built in one
    /// buffer; `payloadSize` is ``payloadSize(of:)``'s answer, when the caller has it.
    static func record(sequence: UInt64, of operations: [LogWriter.Operation], payloadSize: Int? = nil) -> [UInt8] {
        let payloadSize = payloadSize ?? Self.payloadSize(of: operations)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(recordSize(payloadSize: payloadSize))
        bytes.appendLittleEndian(magic)
        bytes.appendLittleEndian(sequence)
        bytes.appendLittleEndian(UInt32(payloadSize))
        bytes.appendLittleEndian(UInt32(0))  // the checksum, once the payload is there
        bytes.appendLittleEndian(UInt32(operations.count))
        for operation in operations {
            switch operation {
            case .append(let entries):
                bytes.append(Tag.append.rawValue)
                bytes.appendLittleEndian(UInt32(entries.count))
                for entry in entries {
                    let frame = entry.frame()
                    bytes.appendLittleEndian(entry.index)
                    bytes.appendLittleEndian(UInt32(frame.count))
                    bytes.append(contentsOf: frame)
                }
            case .saveHardState(let state):
                let frame = state.frame()
                bytes.append(Tag.saveHardState.rawValue)
                bytes.appendLittleEndian(UInt32(frame.count))
                bytes.append(contentsOf: frame)
            case .truncate(let index):
                bytes.append(Tag.truncate.rawValue)
                bytes.appendLittleEndian(index)
            case .compact(let index, let term):
                bytes.append(Tag.compact.rawValue)
                bytes.appendLittleEndian(index)
                bytes.appendLittleEndian(term)
            case .reset(let index, let term):
                bytes.append(Tag.reset.rawValue)
                bytes.appendLittleEndian(index)
                bytes.appendLittleEndian(term)
            case .appendNext, .batch, .checkpoint:
                preconditionFailure("only resolved operations are journaled")
            }
        }
        let checksum = bytes.withUnsafeBytes { raw in
            Self.checksum(
                header: UnsafeRawBufferPointer(rebasing: raw[0..<headerSize]),
                payload: UnsafeRawBufferPointer(rebasing: raw[headerSize...]))
        }
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: checksum.littleEndian, toByteOffset: 16, as: UInt32.self) }
        return bytes
    }

    static func operations(in payload: [UInt8], sequence: UInt64) throws -> [LogWriter.Operation] {
        try payload.withUnsafeBytes { raw in
            var reader = Reader(bytes: raw, sequence: sequence)
            var operations: [LogWriter.Operation] = []
            for _ in 0..<(try reader.integer(UInt32.self)) {
                let tag = try reader.integer(UInt8.self)
                switch Tag(rawValue: tag) {
                case .append:
                    var entries: [LogEntry] = []
                    for _ in 0..<(try reader.integer(UInt32.self)) {
                        let index = try reader.integer(UInt64.self)
                        let frame = try reader.bytes(Int(try reader.integer(UInt32.self)))
                        entries.append(try LogEntry(index: index, frame: frame))
                    }
                    operations.append(.append(entries))
                case .saveHardState:
                    let frame = try reader.bytes(Int(try reader.integer(UInt32.self)))
                    operations.append(.saveHardState(try HardState(frame: Array(frame))))
                case .truncate:
                    operations.append(.truncate(from: try reader.position()))
                case .compact:
                    operations.append(.compact(through: try reader.position(), term: try reader.position()))
                case .reset:
                    operations.append(.reset(snapshotIndex: try reader.position(), term: try reader.position()))
                case nil:
                    throw StoreError(.journal, "journal record \(sequence) holds an unknown operation \(tag)")
                }
            }
            return operations
        }
    }

    /// Reads the fields of one record's payload, failing on a record that ends early.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let sequence: UInt64
        var offset = 0

        init(bytes: UnsafeRawBufferPointer, sequence: UInt64) {
            self.bytes = bytes
            self.sequence = sequence
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let size = MemoryLayout<T>.size
            guard offset + size <= bytes.count else { throw truncated() }
            defer { offset += size }
            return bytes.loadLittleEndian(T.self, at: offset)
        }

        /// A log index or term: at most ``LogEntry/largestPosition``.
        mutating func position() throws -> UInt64 {
            let value = try integer(UInt64.self)
            guard value <= LogEntry.largestPosition else {
                throw StoreError(
                    .journal, "journal record \(sequence) holds an index or term of \(value), past any log's")
            }
            return value
        }

        mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer {
            guard count >= 0, offset + count <= bytes.count else { throw truncated() }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }

        private func truncated() -> StoreError {
            StoreError(.journal, "journal record \(sequence) ends inside an operation")
        }
    }
}
