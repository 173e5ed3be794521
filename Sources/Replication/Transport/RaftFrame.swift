import Store

/// One frame on the replication port: which group it is for and what it carries, a Raft message,
/// a piece of a snapshot, or a question or answer about a member's status.
///
/// On the wire: `length u32 | version u8 | group (u8 length, UTF-8) | message | crc32c u32`, integers
/// little-endian (a snapshot chunk is a message whose type is 100, a status question 101 and its
/// answer 102, a member's API address 103, its region 104, a connection's hello 105, its region's
/// founding 106); `length` counts everything after
/// itself, the checksum covers version through message. The codec is the one seam every byte of the transport passes through, so TLS (or a new
/// version) changes nothing above it. A frame that does not decode — wrong version, short, a bad
/// checksum, an impossible field — is an error; the transport closes that connection. An intact
/// frame of a message type this build does not know is skipped instead (a newer member's; members
/// before commit c3b5980 close the connection on one).
public struct RaftFrame: Sendable, Equatable {
    public var group: String
    public var content: Content

    /// What a frame carries.
    public enum Content: Sendable, Equatable {
        case message(RaftMessage)
        case snapshotChunk(SnapshotChunk)
        /// A status question (`status` nil) or answer (``MemberStatusExchange``).
        case memberStatus(MemberStatusExchange)
        /// Where the sender's API listens (members before this type skip it).
        case memberAPIAddress(MemberAPIAddress)
        /// The region the sender was started in (members before this type skip it).
        case memberRegion(MemberRegion)
        /// How the sender's region was founded (members before this type skip it).
        case memberFounding(MemberFounding)
        /// The first frame on a connection: which region the dialling member belongs to (members
        /// before this type skip it). The transport answers it; it never reaches a receiver.
        case hello(ConnectionHello)
    }

    public init(group: String, message: RaftMessage) {
        self.group = group
        content = .message(message)
    }

    public init(group: String, chunk: SnapshotChunk) {
        self.group = group
        content = .snapshotChunk(chunk)
    }

    public init(group: String, memberStatus: MemberStatusExchange) {
        self.group = group
        content = .memberStatus(memberStatus)
    }

    public init(group: String, memberAPIAddress: MemberAPIAddress) {
        self.group = group
        content = .memberAPIAddress(memberAPIAddress)
    }

    public init(group: String, memberRegion: MemberRegion) {
        self.group = group
        content = .memberRegion(memberRegion)
    }

    public init(group: String, memberFounding: MemberFounding) {
        self.group = group
        content = .memberFounding(memberFounding)
    }

    public init(group: String, hello: ConnectionHello) {
        self.group = group
        content = .hello(hello)
    }

    /// The Raft message, if the frame carries one.
    public var message: RaftMessage? {
        if case .message(let message) = content { return message }
        return nil
    }

    /// Whether the frame is one only a leader or a candidate sends, which can change what a member
    /// holds, its term or whom it follows: appends, heartbeats, snapshots (announced and their
    /// chunks), vote and pre-vote requests, a leader's hand-over, and its word that a member was removed. A connection that named no
    /// region id carries none of these to a member that knows its region's (``ConnectionHello``).
    public var leadsOrCampaigns: Bool {
        switch content {
        case .snapshotChunk: return true
        case .message(let message):
            switch message.body {
            case .preVote, .vote, .append, .heartbeat, .snapshot, .timeoutNow, .removed: return true
            default: return false
            }
        default: return false
        }
    }

    /// Who sent the frame.
    public var sender: String {
        switch content {
        case .message(let message): message.from
        case .snapshotChunk(let chunk): chunk.from
        case .memberStatus(let exchange): exchange.from
        case .memberAPIAddress(let address): address.from
        case .memberRegion(let region): region.from
        case .memberFounding(let founding): founding.from
        case .hello(let hello): hello.from
        }
    }

    /// Who the frame is for.
    public var recipient: String {
        switch content {
        case .message(let message): message.to
        case .snapshotChunk(let chunk): chunk.to
        case .memberStatus(let exchange): exchange.to
        case .memberAPIAddress(let address): address.to
        case .memberRegion(let region): region.to
        case .memberFounding(let founding): founding.to
        case .hello(let hello): hello.to
        }
    }

    public static let version: UInt8 = 1
    /// The largest frame accepted (a bigger length prefix closes the connection).
    public static let maxFrameBytes = 64 << 20

    /// The whole frame, length prefix included, built in one buffer.
    public func encoded() -> [UInt8] {
        var writer = FrameWriter()
        writer.u32(0)  // the length, filled in below
        writer.u8(Self.version)
        writer.string(group)
        switch content {
        case .message(let message): writer.message(message)
        case .snapshotChunk(let chunk): writer.chunk(chunk)
        case .memberStatus(let exchange): writer.memberStatus(exchange)
        case .memberAPIAddress(let address): writer.memberAPIAddress(address)
        case .memberRegion(let region): writer.memberRegion(region)
        case .memberFounding(let founding): writer.memberFounding(founding)
        case .hello(let hello): writer.hello(hello)
        }
        let checksum = writer.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[4...])) }
        writer.u32(checksum)
        let length = UInt32(writer.bytes.count - 4).littleEndian
        withUnsafeBytes(of: length) { writer.bytes.replaceSubrange(0..<4, with: $0) }
        return writer.bytes
    }

    /// Decodes a frame's body (what follows the length prefix).
    public init(body: [UInt8]) throws {
        guard body.count >= 1 + 1 + 4 else { throw Self.malformed("a frame of \(body.count) bytes is too short") }
        let end = body.count - 4
        let matches = body.withUnsafeBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<end]))
                == UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: end, as: UInt32.self))
        }
        guard matches else { throw Self.malformed("frame checksum mismatch") }
        var reader = FrameReader(body, end: end)
        let version = try reader.u8()
        guard version == Self.version else {
            throw ReplicationError(.malformed, "frame version \(version); this dwcp speaks \(Self.version)")
        }
        group = try reader.string()
        content = try reader.content()
        guard reader.isAtEnd else { throw Self.malformed("\(reader.remaining) stray bytes after the message") }
    }

    static func malformed(_ text: String) -> ReplicationError { ReplicationError(.malformed, text) }

    /// The message type that marks a snapshot chunk.
    static let chunkTag: UInt8 = 100
    /// The message types of a status question and of its answer.
    static let statusQuestionTag: UInt8 = 101
    static let statusAnswerTag: UInt8 = 102
    /// The message type of a member's API address.
    static let apiAddressTag: UInt8 = 103
    /// The message type of a member's region.
    static let regionTag: UInt8 = 104
    /// The message type of a connection's hello.
    static let helloTag: UInt8 = 105
    /// The message type of a member's region's founding (``MemberFounding``).
    static let foundingTag: UInt8 = 106
}

/// Appends little-endian fields.
struct FrameWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }
    mutating func string(_ value: String) {
        let utf8 = Array(value.utf8.prefix(255))
        bytes.append(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func blob(_ value: [UInt8]) {
        u32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func chunk(_ chunk: SnapshotChunk) {
        string(chunk.from)
        string(chunk.to)
        u64(chunk.term)
        u8(RaftFrame.chunkTag)
        u64(chunk.index)
        u64(chunk.offset)
        u64(chunk.totalBytes)
        u32(chunk.checksum)
        blob(chunk.data)
    }

    mutating func memberAPIAddress(_ address: MemberAPIAddress) {
        string(address.from)
        string(address.to)
        u64(0)
        u8(RaftFrame.apiAddressTag)
        string(address.address)
    }

    mutating func memberRegion(_ said: MemberRegion) {
        string(said.from)
        string(said.to)
        u64(0)
        u8(RaftFrame.regionTag)
        string(said.region)
    }

    mutating func memberFounding(_ said: MemberFounding) {
        string(said.from)
        string(said.to)
        u64(0)
        u8(RaftFrame.foundingTag)
        string(said.founding)
        string(said.address)
    }

    mutating func hello(_ hello: ConnectionHello) {
        string(hello.from)
        string(hello.to)
        u64(0)
        u8(RaftFrame.helloTag)
        u64(hello.regionID)
        string(hello.address)
    }

    mutating func memberStatus(_ exchange: MemberStatusExchange) {
        string(exchange.from)
        string(exchange.to)
        u64(exchange.status?.term ?? 0)
        u8(exchange.status == nil ? RaftFrame.statusQuestionTag : RaftFrame.statusAnswerTag)
        u64(exchange.id)
        guard let status = exchange.status else { return }
        string(status.role)
        string(status.leader)
        u64(status.lastIndex)
        u64(status.commitIndex)
        u64(status.appliedIndex)
        string(status.version)
        string(status.schemaVersion)
    }

    mutating func message(_ message: RaftMessage) {
        string(message.from)
        string(message.to)
        u64(message.term)
        switch message.body {
        case .preVote(let lastIndex, let lastTerm):
            u8(1)
            u64(lastIndex)
            u64(lastTerm)
        case .preVoteResponse(let granted):
            u8(2)
            bool(granted)
        case .vote(let lastIndex, let lastTerm, let transfer):
            u8(3)
            u64(lastIndex)
            u64(lastTerm)
            bool(transfer)
        case .voteResponse(let granted):
            u8(4)
            bool(granted)
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            u8(5)
            u64(prevIndex)
            u64(prevTerm)
            u64(commit)
            u32(UInt32(entries.count))
            for entry in entries {
                u64(entry.index)
                u64(entry.term)
                u8(entry.kind.rawValue)
                blob(entry.payload)
            }
        case .appendResponse(let accepted, let index, let hintIndex, let hintTerm):
            u8(6)
            bool(accepted)
            u64(index)
            u64(hintIndex)
            u64(hintTerm)
        case .heartbeat(let commit, let readContext):
            u8(7)
            u64(commit)
            u64(readContext)
        case .heartbeatResponse(let readContext):
            u8(8)
            u64(readContext)
        case .snapshot(let meta):
            u8(9)
            u64(meta.index)
            u64(meta.term)
            blob(meta.membership.encoded())
        case .timeoutNow:
            u8(10)
        case .readIndex(let context):
            u8(11)
            u64(context)
        case .readIndexResponse(let context, let index):
            u8(12)
            u64(context)
            u64(index)
        case .propose(let id, let payloads):
            u8(13)
            u64(id)
            u32(UInt32(payloads.count))
            for payload in payloads { blob(payload) }
        case .proposeResponse(let id, let index):
            u8(14)
            u64(id)
            u64(index)
        case .proposeRefused(let id):
            u8(15)
            u64(id)
        case .removed(let index):
            u8(16)
            u64(index)
        }
    }
}

/// Reads little-endian fields up to `end`, throwing `.malformed` instead of reading past it.
struct FrameReader {
    let bytes: [UInt8]
    let end: Int
    var offset = 0

    init(_ bytes: [UInt8], end: Int? = nil) {
        self.bytes = bytes
        self.end = end ?? bytes.count
    }

    var remaining: Int { end - offset }
    var isAtEnd: Bool { offset == end }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        try reserve(count)
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    private mutating func reserve(_ count: Int) throws {
        guard count >= 0, count <= remaining else {
            throw RaftFrame.malformed("a field of \(count) bytes runs past the frame's end")
        }
    }

    private mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        try reserve(MemoryLayout<T>.size)
        defer { offset += MemoryLayout<T>.size }
        return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) })
    }

    mutating func u8() throws -> UInt8 { try integer(UInt8.self) }
    mutating func u32() throws -> UInt32 { try integer(UInt32.self) }
    mutating func u64() throws -> UInt64 { try integer(UInt64.self) }
    /// A log index or a term: at most `Int64.max`, as the views and the log keep them. A larger
    /// one is no position a log reaches; refused here, it cannot overflow the arithmetic on it.
    mutating func logPosition() throws -> UInt64 {
        let value = try u64()
        guard value <= LogEntry.largestPosition else { throw RaftFrame.malformed("a log index or term of \(value)") }
        return value
    }
    mutating func bool() throws -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw RaftFrame.malformed("a flag of value \(other)")
        }
    }
    mutating func string() throws -> String {
        let length = Int(try u8())
        let raw = try take(length)
        guard let text = String(validating: raw, as: UTF8.self) else {
            throw RaftFrame.malformed("a name is not UTF-8")
        }
        return text
    }
    mutating func blob() throws -> [UInt8] { Array(try take(Int(try u32()))) }

    mutating func content() throws -> RaftFrame.Content {
        let from = try string()
        let to = try string()
        let term = try logPosition()
        let tag = try u8()
        if tag == RaftFrame.statusQuestionTag || tag == RaftFrame.statusAnswerTag {
            let id = try u64()
            guard tag == RaftFrame.statusAnswerTag else {
                guard term == 0 else { throw RaftFrame.malformed("a status question with term \(term)") }
                return .memberStatus(MemberStatusExchange(from: from, to: to, id: id, status: nil))
            }
            let status = MemberStatus(
                role: try string(), leader: try string(), term: term, lastIndex: try logPosition(),
                commitIndex: try logPosition(), appliedIndex: try logPosition(), version: try string(),
                schemaVersion: try string())
            return .memberStatus(MemberStatusExchange(from: from, to: to, id: id, status: status))
        }
        if tag == RaftFrame.apiAddressTag {
            guard term == 0 else { throw RaftFrame.malformed("an API address with term \(term)") }
            return .memberAPIAddress(MemberAPIAddress(from: from, to: to, address: try string()))
        }
        if tag == RaftFrame.regionTag {
            guard term == 0 else { throw RaftFrame.malformed("a region with term \(term)") }
            return .memberRegion(MemberRegion(from: from, to: to, region: try string()))
        }
        if tag == RaftFrame.foundingTag {
            guard term == 0 else { throw RaftFrame.malformed("a founding with term \(term)") }
            return .memberFounding(
                MemberFounding(from: from, to: to, founding: try string(), address: try string()))
        }
        if tag == RaftFrame.helloTag {
            guard term == 0 else { throw RaftFrame.malformed("a hello with term \(term)") }
            return .hello(ConnectionHello(from: from, to: to, regionID: try u64(), address: try string()))
        }
        guard tag != RaftFrame.chunkTag else {
            let index = try logPosition()
            let offset = try u64()
            let total = try u64()
            let checksum = try u32()
            let data = try blob()
            guard offset <= total, UInt64(data.count) <= total - offset else {
                throw RaftFrame.malformed("a snapshot chunk at \(offset) runs past the snapshot's \(total) bytes")
            }
            return .snapshotChunk(
                SnapshotChunk(
                    from: from, to: to, index: index, term: term, offset: offset, totalBytes: total, checksum: checksum,
                    data: data))
        }
        return .message(try message(from: from, to: to, term: term, tag: tag))
    }

    mutating func message(from: String, to: String, term: UInt64, tag: UInt8) throws -> RaftMessage {
        let body: RaftMessage.Body
        switch tag {
        case 1: body = .preVote(lastIndex: try logPosition(), lastTerm: try logPosition())
        case 2: body = .preVoteResponse(granted: try bool())
        case 3: body = .vote(lastIndex: try logPosition(), lastTerm: try logPosition(), transfer: try bool())
        case 4: body = .voteResponse(granted: try bool())
        case 5:
            let prevIndex = try logPosition()
            let prevTerm = try logPosition()
            let commit = try logPosition()
            let count = Int(try u32())
            // Each entry takes at least 21 bytes: refuse a count the frame cannot hold.
            guard count <= remaining / 21 else { throw RaftFrame.malformed("an append claims \(count) entries") }
            var entries: [LogEntry] = []
            entries.reserveCapacity(count)
            for position in 0..<count {
                let index = try logPosition()
                let entryTerm = try logPosition()
                let rawKind = try u8()
                guard let kind = LogEntry.Kind(rawValue: rawKind) else {
                    throw RaftFrame.malformed("entry \(index) has unknown kind \(rawKind)")
                }
                guard index == prevIndex + 1 + UInt64(position) else {
                    throw RaftFrame.malformed("append entries are not consecutive at \(index)")
                }
                entries.append(LogEntry(index: index, term: entryTerm, kind: kind, payload: try blob()))
            }
            body = .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case 6:
            body = .appendResponse(
                accepted: try bool(), index: try logPosition(), hintIndex: try logPosition(),
                hintTerm: try logPosition())
        case 7: body = .heartbeat(commit: try logPosition(), readContext: try u64())
        case 8: body = .heartbeatResponse(readContext: try u64())
        case 9:
            let index = try logPosition()
            let snapshotTerm = try logPosition()
            let membership = try RaftMembership(decoding: try blob())
            body = .snapshot(RaftSnapshotMeta(index: index, term: snapshotTerm, membership: membership))
        case 10: body = .timeoutNow
        case 11: body = .readIndex(context: try u64())
        case 12: body = .readIndexResponse(context: try u64(), index: try logPosition())
        case 13:
            let id = try u64()
            let count = Int(try u32())
            // Each payload takes at least its 4-byte length.
            guard count <= remaining / 4 else { throw RaftFrame.malformed("a proposal claims \(count) payloads") }
            var payloads: [[UInt8]] = []
            payloads.reserveCapacity(count)
            for _ in 0..<count { payloads.append(try blob()) }
            body = .propose(id: id, payloads: payloads)
        case 14: body = .proposeResponse(id: try u64(), index: try logPosition())
        case 15: body = .proposeRefused(id: try u64())
        case 16: body = .removed(index: try logPosition())
        default: throw ReplicationError(.unknownMessage, "unknown message type \(tag)")
        }
        return RaftMessage(from: from, to: to, term: term, body: body)
    }
}
