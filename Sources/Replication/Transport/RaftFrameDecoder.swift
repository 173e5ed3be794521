import Logging
import NIOCore

/// Splits the replication byte stream into ``RaftFrame``s. A length above the maximum or a frame
/// that does not decode is an error: the pipeline closes that connection. An intact frame of a
/// message type this build does not know (a newer member's) is skipped, and noted once per
/// connection.
struct RaftFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = RaftFrame

    let maxFrameBytes: Int
    let logger: Logger
    var notedUnknown = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return .needMoreData
        }
        guard Int(length) <= maxFrameBytes else {
            throw ReplicationError(.oversized, "a frame of \(length) bytes exceeds the limit of \(maxFrameBytes)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readBytes(length: Int(length))!
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

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
