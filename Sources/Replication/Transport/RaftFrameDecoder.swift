import Logging
import NIOCore
import Store

/// Splits the replication byte stream into ``RaftFrame``s. A length above the maximum or a frame
/// that does not decode is an error: the pipeline closes that connection. An intact frame of a
/// message type this build does not know (a newer member's) is skipped, and noted once per
/// connection. On an inbound connection a ``FrameStallWatch`` closes it when it owes bytes and
/// sends none.
struct RaftFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RaftFrame

    let maxFrameBytes: Int
    let logger: Logger
    var notedUnknown = false
    /// Whether the connection's first bytes were checked for another protocol's.
    var checkedStart = false
    /// On inbound connections only: a peer sends nothing on the connections this member opens.
    var stallWatch: FrameStallWatch?

    init(maxFrameBytes: Int, logger: Logger, stalledFrameDeadline: TimeAmount? = nil) {
        self.maxFrameBytes = maxFrameBytes
        self.logger = logger
        stallWatch = stalledFrameDeadline.map(FrameStallWatch.init(deadline:))
    }

    mutating func decoderAdded(context: ChannelHandlerContext) { stallWatch?.start(context: context) }

    mutating func decoderRemoved(context: ChannelHandlerContext) { stallWatch?.stop() }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        stallWatch?.heard()
        // Once nine bytes are in (every frame is longer); until then the length alone may refuse them.
        if !checkedStart, let start = buffer.getBytes(at: buffer.readerIndex, length: 9) {
            checkedStart = true
            if let refusal = Self.foreignProtocol(start) { throw refusal }
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            stallWatch?.waiting(context: context, received: buffer.readableBytes, of: nil)
            return .needMoreData
        }
        guard Int(length) <= maxFrameBytes else {
            throw ReplicationError(.oversized, "a frame of \(length) bytes exceeds the limit of \(maxFrameBytes)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else {
            stallWatch?.waiting(context: context, received: buffer.readableBytes, of: Int(length))
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readBytes(length: Int(length))!
        stallWatch?.tookFrame(leaving: buffer.readableBytes)
        do {
            context.fireChannelRead(wrapInboundOut(try RaftFrame(body: body)))
        } catch let error as ReplicationError where error.code == .unknownMessage {
            if !notedUnknown {
                notedUnknown = true
                let peer = context.remoteAddress.map { "\($0)" } ?? "a peer"
                logger.notice("skipping frames from \(peer) that this dwcp does not know (\(error.message))")
            }
        }
        return .continue
    }

    /// What a connection whose first bytes are `start` speaks instead of frames (`foreignProtocol`
    /// for TLS, `httpRequest`), in words an operator can act on; nil when they may begin a frame. Read as a frame's length, a TLS
    /// ClientHello asks for 33–84 MB: within the limit for the short ones, which would otherwise
    /// wait, silently, for bytes that never come.
    static func foreignProtocol(_ start: [UInt8]) -> ReplicationError? {
        // A TLS record of type handshake (22), version 3.x, whose message is a ClientHello (1) no
        // longer than the record. A frame with a one-byte group name can start like the record's
        // header, but then its group's one character stands where the hello's 24-bit length
        // begins, which makes that length far longer than any record (2^16 bytes at most).
        if start.count >= 9, start[0] == 0x16, start[1] == 0x03, start[2] <= 0x04, start[5] == 0x01,
            Int(start[6]) << 16 | Int(start[7]) << 8 | Int(start[8]) <= (Int(start[3]) << 8 | Int(start[4])) - 4
        {
            return ReplicationError(
                .foreignProtocol,
                "it speaks TLS (a TLS handshake where a frame was expected): every member of a region must use TLS (--peer-cert-file and the rest) or none, and this member runs without"
            )
        }
        // Read as a length, any of these is over the limit, so no frame begins so.
        let methods = ["GET ", "POST", "PUT ", "HEAD", "DELE", "PATC", "OPTI", "CONN", "PRI "]
        if methods.contains(where: { start.starts(with: $0.utf8) }) {
            // Such a connection is answered (``httpAnswer``) before it is closed.
            return ReplicationError(
                .httpRequest,
                "it sent an HTTP request: this is a replication port (the API listens on the member's --api address)")
        }
        return nil
    }

    /// What an HTTP client (the CLI given the wrong port, curl) gets before the connection closes:
    /// the API's own kind of error, so it is told where it is rather than that the connection
    /// closed without an answer.
    static let httpAnswer: [UInt8] = {
        let message =
            "this is a dwcp replication port (--listen), not the API: the member's API listens on its --api address"
        let body = JSONValue.object([
            ("error", .object([("code", .string("invalid")), ("message", .string(message))]))
        ]).serialized()
        let head =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return Array((head + body).utf8)
    }()

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A peer that went away mid-frame (it crashed, or was never a member): said, not dropped
        // silently. The frame is lost with the connection, as any unacknowledged message may be.
        // (One closed here because its frame stalled was said then.)
        if stallWatch?.fired == true { buffer.moveReaderIndex(to: buffer.writerIndex) }
        if seenEOF, buffer.readableBytes > 0 {
            let got = buffer.readableBytes
            let length = buffer.readInteger(endianness: .little, as: UInt32.self)
            buffer.moveReaderIndex(to: buffer.writerIndex)
            guard let length else {
                throw ReplicationError(
                    .malformed, "the connection closed in the middle of a frame's length (\(got) of its 4 bytes came)")
            }
            throw ReplicationError(
                .malformed, "the connection closed in the middle of a frame (\(got - 4) of its \(length) bytes came)")
        }
        return .needMoreData
    }
}
