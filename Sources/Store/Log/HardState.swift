/// The Raft state a node must never forget: its current term, whom it voted for in that term, and
/// the highest index it knows to be committed.
public struct HardState: Sendable, Equatable {
    public var term: UInt64
    public var vote: String?
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: String? = nil, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

extension HardState {
    static let frameVersion: UInt8 = 1

    func frame() -> [UInt8] {
        var bytes: [UInt8] = [Self.frameVersion]
        bytes.appendLittleEndian(term)
        bytes.appendLittleEndian(commit)
        let voteBytes = Array((vote ?? "").utf8)
        bytes.appendLittleEndian(UInt16(voteBytes.count))
        bytes.append(contentsOf: voteBytes)
        bytes.appendLittleEndian(CRC32C.checksum(bytes))
        return bytes
    }

    init(frame: [UInt8]) throws {
        try self.init(unsafeFrame: frame)
    }

    private init(unsafeFrame frame: [UInt8]) throws {
        let damaged = StoreError(.corruptEntry, "the hard state (term, vote, commit) is damaged")
        guard frame.count >= 1 + 8 + 8 + 2 + 4 else { throw damaged }
        guard frame[0] == Self.frameVersion else {
            throw StoreError(
                .unsupportedVersion, "the hard state has version \(frame[0]); this dwcp reads \(Self.frameVersion)")
        }
        let parsed: HardState? = frame.withUnsafeBytes { raw in
            let stored = raw.loadLittleEndian(UInt32.self, at: raw.count - 4)
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<(raw.count - 4)])) == stored else {
                return nil
            }
            let voteLength = Int(raw.loadLittleEndian(UInt16.self, at: 17))
            guard 19 + voteLength + 4 == raw.count else { return nil }
            let vote = String(decoding: UnsafeRawBufferPointer(rebasing: raw[19..<(19 + voteLength)]), as: UTF8.self)
            return HardState(
                term: raw.loadLittleEndian(UInt64.self, at: 1),
                vote: vote.isEmpty ? nil : vote,
                commit: raw.loadLittleEndian(UInt64.self, at: 9))
        }
        guard let parsed, parsed.term <= LogEntry.largestPosition, parsed.commit <= LogEntry.largestPosition else {
            throw damaged
        }
        self = parsed
    }
}
