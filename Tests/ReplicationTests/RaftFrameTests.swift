import Store
import Testing

@testable import Replication

@Suite struct RaftFrameTests {
    static let membership = RaftMembership(
        voters: ["a": "10.0.0.1:7100", "b": "10.0.0.2:7100"], learners: ["c": "x:1"])
    static let messages: [RaftMessage.Body] = [
        .preVote(lastIndex: 9, lastTerm: 3), .preVoteResponse(granted: true),
        .vote(lastIndex: 1 << 40, lastTerm: 7, transfer: true), .voteResponse(granted: false),
        .append(
            prevIndex: 41, prevTerm: 2,
            entries: [
                LogEntry(index: 42, term: 3, kind: .record, payload: [1, 2, 3]),
                LogEntry(index: 43, term: 3, kind: .noop, payload: []),
                LogEntry(index: 44, term: 3, kind: .membership, payload: membership.encoded()),
            ], commit: 40),
        .appendResponse(accepted: false, index: 44, hintIndex: 30, hintTerm: 2),
        .heartbeat(commit: 5, readContext: 77), .heartbeatResponse(readContext: 77),
        .snapshot(RaftSnapshotMeta(index: 1000, term: 4, membership: membership)), .timeoutNow,
        .readIndex(context: 12), .readIndexResponse(context: 12, index: 99),
        .propose(id: 3, payloads: [[1, 2], [], Array("intent".utf8)]), .proposeResponse(id: 3, index: 57),
        .proposeRefused(id: 4), .removed(index: 812),
    ]

    @Test func everyMessageRoundTrips() throws {
        for body in Self.messages {
            let frame = RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 5, body: body))
            let bytes = frame.encoded()
            let length = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
            #expect(length == bytes.count - 4)
            #expect(try RaftFrame(body: Array(bytes[4...])) == frame, "\(body.name)")
        }
    }

    @Test func snapshotChunksRoundTripAndMustFitTheirSnapshot() throws {
        let chunk = SnapshotChunk(
            from: "a", to: "b", index: 320, term: 2, offset: 1 << 20, totalBytes: (1 << 20) + 3, checksum: 0xdead_beef,
            data: [1, 2, 3])
        let frame = RaftFrame(group: "region", chunk: chunk)
        #expect(try RaftFrame(body: Array(frame.encoded()[4...])) == frame)
        #expect(frame.message == nil && frame.recipient == "b")
        // A chunk that claims to run past the snapshot's end (or overflow) is malformed.
        for offset: UInt64 in [(1 << 20) + 1, .max - 1] {
            var bad = chunk
            bad.offset = offset
            let body = Array(RaftFrame(group: "region", chunk: bad).encoded()[4...])
            #expect(throws: ReplicationError.self) { try RaftFrame(body: body) }
        }
    }

    @Test("status questions and answers, and API addresses, round-trip; a cut-short answer is malformed")
    func memberStatusRoundTrips() throws {
        let status = MemberStatus(
            role: "follower", leader: "a", term: 7, lastIndex: 1 << 33, commitIndex: 90, appliedIndex: 88,
            version: "0.1.0", schemaVersion: "ce190710cd2ace72")
        for exchange in [
            MemberStatusExchange(from: "a", to: "b", id: 41, status: nil),
            MemberStatusExchange(from: "b", to: "a", id: 41, status: status),
        ] {
            let frame = RaftFrame(group: "region", memberStatus: exchange)
            let body = Array(frame.encoded()[4...])
            #expect(try RaftFrame(body: body) == frame)
            #expect(frame.message == nil && frame.recipient == exchange.to)
        }
        // A member's API address, beside its answers.
        let said = RaftFrame(
            group: "region", memberAPIAddress: MemberAPIAddress(from: "b", to: "a", address: "[::1]:7070"))
        #expect(try RaftFrame(body: Array(said.encoded()[4...])) == said)
        #expect(said.sender == "b" && said.recipient == "a" && said.message == nil)
        // And its region.
        let region = RaftFrame(group: "region", memberRegion: MemberRegion(from: "b", to: "a", region: "eu-west"))
        #expect(try RaftFrame(body: Array(region.encoded()[4...])) == region)
        #expect(region.sender == "b" && region.recipient == "a" && region.message == nil)
        // And its region's founding.
        let founding = RaftFrame(
            group: "region",
            memberFounding: MemberFounding(from: "b", to: "a", founding: "00ff00ff00ff00ff", address: "10.0.0.2:7000"))
        #expect(try RaftFrame(body: Array(founding.encoded()[4...])) == founding)
        #expect(founding.sender == "b" && founding.recipient == "a" && founding.message == nil)
        // And a connection's hello.
        let hello = RaftFrame(group: "region", hello: ConnectionHello(from: "b", to: "a", regionID: .max - 7))
        #expect(try RaftFrame(body: Array(hello.encoded()[4...])) == hello)
        #expect(hello.sender == "b" && hello.recipient == "a" && hello.message == nil)
        // The answer without its last field, with the checksum made right again: malformed, not a shorter status.
        var writer = FrameWriter()
        writer.u8(RaftFrame.version)
        writer.string("region")
        writer.memberStatus(MemberStatusExchange(from: "b", to: "a", id: 41, status: status))
        let cut = Array(writer.bytes.dropLast(1 + status.schemaVersion.utf8.count))
        var body = cut
        withUnsafeBytes(of: CRC32C.checksum(cut).littleEndian) { body.append(contentsOf: $0) }
        #expect(throws: ReplicationError.self) { try RaftFrame(body: body) }
    }

    @Test(
        "damaged frames with a checksum made right again: each either fails to decode or re-encodes to the same bytes")
    func damagedFramesNeverDecodeAmbiguously() throws {
        var random = SplitMix64(seed: 20_261_203)
        let status = MemberStatus(
            role: "leader", leader: "a", term: 3, lastIndex: 70, commitIndex: 69, appliedIndex: 60, version: "0.1.0",
            schemaVersion: "f67b847eeed5bd72")
        var frames = Self.messages.map {
            RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 5, body: $0))
        }
        frames.append(
            RaftFrame(
                group: "region",
                chunk: SnapshotChunk(
                    from: "a", to: "b", index: 9, term: 2, offset: 0, totalBytes: 4, checksum: 1, data: [1, 2, 3])))
        frames.append(
            RaftFrame(group: "region", memberStatus: MemberStatusExchange(from: "a", to: "b", id: 4, status: nil)))
        frames.append(
            RaftFrame(group: "region", memberStatus: MemberStatusExchange(from: "b", to: "a", id: 4, status: status)))
        frames.append(
            RaftFrame(group: "region", memberAPIAddress: MemberAPIAddress(from: "b", to: "a", address: "10.0.0.2:7070"))
        )
        frames.append(RaftFrame(group: "region", memberRegion: MemberRegion(from: "b", to: "a", region: "us")))
        frames.append(
            RaftFrame(
                group: "region",
                memberFounding: MemberFounding(from: "b", to: "a", founding: "0123456789abcdef", address: "[::1]:7000"))
        )
        var decoded = 0
        for _ in 0..<20_000 {
            var body = Array(frames[Int(random.next() % UInt64(frames.count))].encoded()[4...].dropLast(4))
            switch random.next() % 3 {
            case 0: body = Array(body.prefix(Int(random.next() % UInt64(body.count + 1))))  // cut short
            case 1:  // a few bytes changed (never the version byte: that is refused before anything else)
                for _ in 0...(random.next() % 3) where body.count > 1 {
                    body[1 + Int(random.next() % UInt64(body.count - 1))] = UInt8(truncatingIfNeeded: random.next())
                }
            default: body += (0..<(random.next() % 9)).map { _ in UInt8(truncatingIfNeeded: random.next()) }  // extra bytes
            }
            withUnsafeBytes(of: CRC32C.checksum(body).littleEndian) { body.append(contentsOf: $0) }
            guard let frame = try? RaftFrame(body: body) else { continue }
            decoded += 1
            #expect(Array(frame.encoded()[4...]) == body, "decoded to \(frame), which encodes differently")
        }
        #expect(decoded > 0)
    }

    @Test func everyFlippedBitIsCaught() {
        let frame = RaftFrame(
            group: "region", message: RaftMessage(from: "a", to: "b", term: 5, body: Self.messages[4]))
        let body = Array(frame.encoded()[4...])
        for position in body.indices {
            var damaged = body
            damaged[position] ^= 0x10
            #expect(throws: ReplicationError.self) { try RaftFrame(body: damaged) }
        }
    }

    @Test func truncatedAndForeignFramesAreRefused() {
        let body = Array(
            RaftFrame(group: "g", message: RaftMessage(from: "a", to: "b", term: 1, body: .timeoutNow)).encoded()[4...])
        for length in 0..<body.count {
            #expect(throws: ReplicationError.self) { try RaftFrame(body: Array(body[0..<length])) }
        }
        // A frame of another version, with a valid checksum, names the version.
        var other = Array(body[0..<(body.count - 4)])
        other[0] = 9
        var writer = FrameWriter()
        writer.bytes = other
        writer.u32(CRC32C.checksum(other))
        #expect {
            try RaftFrame(body: writer.bytes)
        } throws: { error in
            (error as? ReplicationError)?.message.contains("version 9") == true
        }
    }

    @Test func anAppendClaimingMoreEntriesThanItHoldsIsRefused() {
        var writer = FrameWriter()
        writer.u8(RaftFrame.version)
        writer.string("region")
        writer.string("a")
        writer.string("b")
        writer.u64(1)
        writer.u8(5)
        writer.u64(0)
        writer.u64(0)
        writer.u64(0)
        writer.u32(UInt32.max)
        writer.u32(CRC32C.checksum(writer.bytes))
        #expect(throws: ReplicationError.self) { try RaftFrame(body: writer.bytes) }
    }

    @Test("an index or term past Int64.max is malformed: an append at UInt64.max, a vote in term UInt64.max")
    func positionsPastInt64AreRefused() throws {
        let huge = UInt64(Int64.max) + 1
        let bodies: [(UInt64, RaftMessage.Body)] = [
            // The entry's index would be prevIndex + 1: it overflowed the decoder's arithmetic.
            (
                1,
                .append(
                    prevIndex: .max, prevTerm: 1, entries: [LogEntry(index: 0, term: 1, kind: .noop, payload: [])],
                    commit: 0)
            ),
            (.max, .vote(lastIndex: 1, lastTerm: 1, transfer: false)),
            (huge, .heartbeat(commit: 0, readContext: 1)),
            (1, .heartbeat(commit: huge, readContext: 1)),
            (1, .appendResponse(accepted: true, index: .max, hintIndex: 0, hintTerm: 0)),
            (1, .snapshot(RaftSnapshotMeta(index: huge, term: 1, membership: Self.membership))),
        ]
        for (term, body) in bodies {
            let frame = RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: term, body: body))
            let bytes = Array(frame.encoded()[4...])
            #expect(throws: ReplicationError.self, "\(body.name) in term \(term)") { try RaftFrame(body: bytes) }
        }
        // The largest allowed still round-trips.
        let edge = RaftFrame(
            group: "region",
            message: RaftMessage(
                from: "a", to: "b", term: UInt64(Int64.max), body: .heartbeat(commit: UInt64(Int64.max), readContext: 1)
            ))
        #expect(try RaftFrame(body: Array(edge.encoded()[4...])) == edge)
    }
}
