import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import Replication

/// Snapshot chunks wait in a bounded backlog: a connection that brings more while it is full
/// stops reading until the receiver is done with some, and is not closed as stalled meanwhile.
@Suite struct InboundBacklogTests {
    @Test(
        "a connection that brings chunks past the backlog's limit stops reading until they are written, then delivers the rest in order"
    )
    func chunksPastTheLimitWaitInTheSender() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // A stall deadline below how long the connection is held: the hold must not count.
        let receiver = RaftTransport(
            eventLoopGroup: group, logger: Logger(label: "backlog-test"),
            liveness: ConnectionLiveness(stalledFrameDeadline: .milliseconds(500)))
        let chunkBytes = 64 << 10
        let backlog = InboundBacklog(limit: 3 * chunkBytes)
        let offsets = Mutex<[UInt64]>([])
        let port = try await receiver.listen(host: "127.0.0.1", port: 0, backlog: backlog) { frame in
            guard case .snapshotChunk(let chunk) = frame.content else { return }
            // As the consensus does: counted as it is queued, finished once written.
            backlog.added(chunk.data.count)
            offsets.withLock { $0.append(chunk.offset) }
        }
        let count = 40
        let frames = (0..<count).flatMap { number in
            RaftFrame(
                group: "region",
                chunk: SnapshotChunk(
                    from: "a", to: "b", index: 7, term: 1, offset: UInt64(number * chunkBytes),
                    totalBytes: UInt64(count * chunkBytes), checksum: 0, data: [UInt8](repeating: 1, count: chunkBytes))
            ).encoded()
        }
        // Written as the connection opens, on its loop: a test task that waits for a busy
        // machine before it writes would be a stall of the sender's own.
        let sender = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).map { channel in
            channel.writeAndFlush(channel.allocator.buffer(bytes: frames), promise: nil)
            return channel
        }.get()

        // Held: what arrives stops near the limit (frames read before the hold still decode).
        #expect(try await eventually(.seconds(10)) { backlog.heldConnections == 1 })
        try await Task.sleep(for: .seconds(1.5))
        let whileHeld = offsets.withLock { $0.count }
        #expect(whileHeld >= 3 && whileHeld <= 12, "\(whileHeld) of \(count) chunks delivered while held")
        #expect(backlog.bytes == whileHeld * chunkBytes)

        // Written one by one: the rest arrives, on the same connection, in order.
        var finished = 0
        let deadline = ContinuousClock.now + .seconds(20)
        while finished < count, ContinuousClock.now < deadline {
            if finished < offsets.withLock({ $0.count }) {
                backlog.finished(chunkBytes)
                finished += 1
            } else {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        #expect(finished == count)
        #expect(offsets.withLock { $0 } == (0..<count).map { UInt64($0 * chunkBytes) })
        #expect(backlog.bytes == 0 && backlog.heldConnections == 0)
        #expect(sender.isActive, "the receiver closed the connection it held")

        try await sender.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }
}
