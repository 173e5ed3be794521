import Logging
import MetricsTestKit
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import Replication

#if canImport(Glibc)
    import Glibc
#endif

/// How the replication port's sockets are set, and how it lets go of connections whose peer is gone or stuck: an inbound
/// connection that owes bytes and sends none is closed after the stalled-frame deadline, and every
/// connection, both ways, carries TCP keep-alive and a limit on unacknowledged data.
@Suite struct ConnectionLivenessTests {
    static let deadline = Duration.milliseconds(1500)

    static func frame(_ term: UInt64) -> [UInt8] {
        RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: term, body: .timeoutNow)).encoded()
    }

    /// A transport on a loopback port with a short stalled-frame deadline, keeping the terms of
    /// the frames it receives.
    static func listening(
        on group: any EventLoopGroup, log: RecordedLog, metrics: TestMetrics, received: ReceivedTerms
    ) async throws -> (RaftTransport, Int) {
        try await RaftTransportTests.listening(
            on: group, log: log, metrics: metrics, liveness: ConnectionLiveness(stalledFrameDeadline: deadline),
            received: received)
    }

    /// When a connection's first bytes went out and when it closed, both taken on its event loop.
    final class ConnectionTimes: Sendable {
        let firstWrite = Mutex<ContinuousClock.Instant?>(nil)
        let closed = Mutex<ContinuousClock.Instant?>(nil)

        /// How long the connection stayed open after its first bytes, once it has closed.
        var open: Duration? {
            guard let first = firstWrite.withLock({ $0 }), let closed = closed.withLock({ $0 }) else { return nil }
            return closed - first
        }
    }

    /// Connects to `port` and writes `pieces` on the connection's event loop, each `every` after
    /// the one before (the first at once): no task runs between the connection and its bytes,
    /// which a busy test process could hold back past the deadline. `times`, if given, is set on
    /// the event loop too: a test task resumes only when the cooperative pool gets to it, which
    /// at the start of a whole run (every test started at once, two threads) took 15-20 s.
    static func connect(
        on group: any EventLoopGroup, to port: Int, writing pieces: [[UInt8]], every: Duration = .zero,
        times: ConnectionTimes? = nil
    ) async throws -> any Channel {
        try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).map { channel in
            channel.closeFuture.whenComplete { _ in times?.closed.withLock { $0 = .now } }
            for (number, piece) in pieces.enumerated() {
                channel.eventLoop.scheduleTask(in: TimeAmount(every * number)) {
                    if number == 0 { times?.firstWrite.withLock { $0 = .now } }
                    channel.writeAndFlush(channel.allocator.buffer(bytes: piece), promise: nil)
                }
            }
            return channel
        }.get()
    }

    static func rejected(_ metrics: TestMetrics) -> Int64 {
        (try? metrics.expectCounter("dwcp_transport_connections_rejected_total").totalValue) ?? 0
    }

    @Test("a connection that stops in the middle of a frame is closed after the deadline, counted and logged")
    func aFrameThatStopsArrivingIsClosed() async throws {
        let (group, log, metrics) = (MultiThreadedEventLoopGroup(numberOfThreads: 1), RecordedLog(), TestMetrics())
        let received = ReceivedTerms()
        let (receiver, port) = try await Self.listening(on: group, log: log, metrics: metrics, received: received)
        let whole = Self.frame(1)
        let times = ConnectionTimes()
        _ = try await Self.connect(on: group, to: port, writing: [whole + whole.prefix(10)], times: times)
        #expect(try await eventually { times.open != nil }, "still open")
        let open = try #require(times.open)
        #expect(open >= Self.deadline && open < .seconds(5), "closed after \(open)")
        #expect(received.terms.withLock { $0.count } == 1)
        #expect(try await eventually { Self.rejected(metrics) == 1 }, "\(Self.rejected(metrics)) \(log.lines)")
        #expect(
            try await eventually(.seconds(10)) {
                log.contains("a frame stopped arriving: 6 of its \(whole.count - 4) bytes came, then nothing for ")
            }, "\(log.lines)")
        await receiver.close()
        try await group.shutdownGracefully()
    }

    @Test("a connection that sends no frame is closed after the deadline; one with whole frames stays open")
    func aSilentConnectionIsClosedAndAnIdleOneIsNot() async throws {
        let (group, log, metrics) = (MultiThreadedEventLoopGroup(numberOfThreads: 1), RecordedLog(), TestMetrics())
        let received = ReceivedTerms()
        let (receiver, port) = try await Self.listening(on: group, log: log, metrics: metrics, received: received)
        let silent = try await Self.connect(on: group, to: port, writing: [])
        let idle = try await Self.connect(on: group, to: port, writing: [Self.frame(1)])
        // A frame that comes slowly, a piece at a time, each well inside the deadline: not stalled.
        let slowFrame = Self.frame(2)
        let pieces = stride(from: 0, to: slowFrame.count, by: 8).map {
            Array(slowFrame[$0..<min($0 + 8, slowFrame.count)])
        }
        let slow = try await Self.connect(on: group, to: port, writing: pieces, every: Self.deadline / 10)
        try await Task.sleep(for: Self.deadline / 10 * pieces.count)
        #expect(try await eventually { !silent.isActive }, "still open")
        #expect(log.contains("it sent no frame in the "), "\(log.lines)")
        // Two deadlines with nothing owed: the idle and the slow one stay.
        try await Task.sleep(for: Self.deadline * 2)
        #expect(idle.isActive && slow.isActive)
        #expect(received.terms.withLock { $0.count } == 2)
        #expect(Self.rejected(metrics) == 1)
        try await idle.close()
        try await slow.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }

    @Test("every replication connection, both ways, carries keep-alive and a limit on unacknowledged data")
    func socketOptionsAreSetBothWays() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let liveness = ConnectionLiveness(
            keepAliveIdle: .seconds(7), keepAliveInterval: .seconds(3), keepAliveProbes: 4,
            unacknowledgedLimit: .milliseconds(12_500))
        let logger = Logger(label: "liveness-test")
        let receiver = RaftTransport(eventLoopGroup: group, logger: logger, liveness: liveness)
        let sender = RaftTransport(eventLoopGroup: group, logger: logger, liveness: liveness)
        let received = Atomic<Int>(0)
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { _ in received.add(1, ordering: .relaxed) }
        sender.send(
            RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 1, body: .timeoutNow)),
            to: "127.0.0.1:\(port)")
        #expect(try await eventually { received.load(ordering: .relaxed) == 1 })
        let dialled = try #require(sender.peers.withLock { $0.values.compactMap(\.channel).first })
        let accepted = try #require(receiver.accepted.withLock { $0.values.first })
        for channel in [dialled, accepted] {
            var read: [SocketOptionValue] = []
            for (option, _) in liveness.socketOptions { read.append(try await channel.getOption(option).get()) }
            #expect(read == [1, 7, 3, 4, 12_500], "\(channel)")
            // TCP_NODELAY at the TCP level, and nothing at the socket level's number 1 (SO_DEBUG,
            // which only root may set: `.socketOption(.tcp_nodelay)` asked for it, and a member
            // not run as root could open no replication connection).
            #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() == 1)
            #expect(try await channel.getOption(.socketOption(.init(rawValue: SO_DEBUG))).get() == 0)
        }
        await sender.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }
}
