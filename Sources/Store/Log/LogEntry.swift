/// One entry of the replicated log: its position, the Raft term it was proposed in, what kind of
/// entry it is, and its payload (an encoded ``Record`` for `.record` entries).
public struct LogEntry: Sendable, Equatable {
    /// What an entry carries.
    public enum Kind: UInt8, Sendable {
        /// A fleet record (``Record``), applied to the views.
        case record = 1
        /// An empty entry a new leader appends to commit its term.
        case noop = 2
        /// A change of the replication group's members.
        case membership = 3
    }

    public var index: UInt64
    public var term: UInt64
    public var kind: Kind
    public var payload: [UInt8]

    public init(index: UInt64, term: UInt64, kind: Kind = .record, payload: [UInt8]) {
        self.index = index
        self.term = term
        self.kind = kind
        self.payload = payload
    }
}

extension LogEntry {
    /// The payload of the no-op entry `dwcp cluster verify` proposes: every member that applies it
    /// hashes its views at that index. Appliers skip no-op entries whatever they carry, so a dwcp
    /// before it applies the marker as the no-op it is.
    public static let viewsDigestMarker = Array("dwcp.views-digest".utf8)

    /// Whether this is the marker of a views digest (``viewsDigestMarker``).
    public var isViewsDigestMarker: Bool { kind == .noop && payload == Self.viewsDigestMarker }

    /// Version of the on-disk entry frame written by this build.
    static let frameVersion: UInt8 = 1
    /// Bytes of the frame around the payload: version, kind, term, payload length, checksum.
    static let frameOverhead = 1 + 1 + 8 + 4 + 4
    /// The largest log index or term: the views keep them as SQLite's signed 64-bit integers, as
    /// the replication frames do.
    public static let largestPosition = UInt64(Int64.max)

    /// The entry as stored in LMDB: `version u8 | kind u8 | term u64 | length u32 | payload | crc32c u32`,
    /// integers little-endian. The checksum covers the index too, so an entry stored under the
    /// wrong key is caught as well as a flipped bit.
    func frame() -> [UInt8] {
        let size = Self.frameOverhead + payload.count
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            Self.writeFrame(
                into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[0..<size])),
                index: index,
                term: term, kind: kind,
                payload: payload)
            initialized = size
        }
    }

    /// Writes the frame of an entry into `buffer`, which has exactly `frameOverhead + payload.count` bytes.
    static func writeFrame(
        into buffer: UnsafeMutableRawBufferPointer, index: UInt64, term: UInt64, kind: Kind, payload: [UInt8]
    ) {
        buffer[0] = frameVersion
        buffer[1] = kind.rawValue
        buffer.storeBytes(of: term.littleEndian, toByteOffset: 2, as: UInt64.self)
        buffer.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: 10, as: UInt32.self)
        payload.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: buffer[14..<(14 + bytes.count)]).copyMemory(from: bytes)
        }
        let body = UnsafeRawBufferPointer(rebasing: buffer[0..<(buffer.count - 4)])
        buffer.storeBytes(
            of: checksum(index: index, frame: body).littleEndian, toByteOffset: buffer.count - 4, as: UInt32.self)
    }

    static func checksum(index: UInt64, frame: [UInt8]) -> UInt32 {
        frame.withUnsafeBytes { checksum(index: index, frame: $0) }
    }

    static func checksum(index: UInt64, frame: UnsafeRawBufferPointer) -> UInt32 {
        let seed = withUnsafeBytes(of: index.littleEndian) { CRC32C.checksum($0) }
        return CRC32C.checksum(frame, continuing: seed)
    }

    /// Decodes a stored frame, verifying its checksum, version and kind.
    init(index: UInt64, frame: UnsafeRawBufferPointer) throws {
        guard frame.count >= Self.frameOverhead else {
            throw StoreError(
                .corruptEntry, "log entry \(index) is damaged: \(frame.count) bytes is shorter than any entry",
                index: index)
        }
        let body = UnsafeRawBufferPointer(rebasing: frame[0..<(frame.count - 4)])
        let stored = frame.loadLittleEndian(UInt32.self, at: frame.count - 4)
        let computed = Self.checksum(index: index, frame: body)
        guard stored == computed else {
            throw StoreError(
                .corruptEntry,
                "log entry \(index) is damaged: checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))",
                index: index)
        }
        let version = frame[0]
        guard version == Self.frameVersion else {
            throw StoreError(
                .unsupportedVersion,
                "log entry \(index) has frame version \(version); this dwcp reads version \(Self.frameVersion)",
                index: index)
        }
        guard let kind = Kind(rawValue: frame[1]) else {
            throw StoreError(.unsupportedVersion, "log entry \(index) has unknown kind \(frame[1])", index: index)
        }
        let length = Int(frame.loadLittleEndian(UInt32.self, at: 10))
        guard length == frame.count - Self.frameOverhead else {
            throw StoreError(
                .corruptEntry, "log entry \(index) is damaged: payload length \(length) does not match the frame",
                index: index)
        }
        let term = frame.loadLittleEndian(UInt64.self, at: 2)
        guard index <= Self.largestPosition, term <= Self.largestPosition else {
            throw StoreError(
                .corruptEntry,
                "log entry \(index) is damaged: its index or its term (\(term)) is past \(Self.largestPosition), the largest a log keeps",
                index: index)
        }
        self.index = index
        self.term = term
        self.kind = kind
        self.payload = Array(UnsafeRawBufferPointer(rebasing: frame[14..<(14 + length)]))
    }
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
