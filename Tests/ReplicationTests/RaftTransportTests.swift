import Logging
import MetricsTestKit
import NIOCore
import NIOPosix
import Store
import Synchronization
import TestSupport
import Testing

@testable import Replication

#if canImport(Glibc)
    import Glibc
#endif

/// The transport's delivery over real loopback sockets: frames sent from the connection's own
/// event loop (where `dwcp serve` runs the Raft driver, and where the transport defers the write
/// until the current job yields) and from other threads arrive, in the order they were sent.
@Suite struct RaftTransportTests {
    @Test func framesSentOnTheChannelsEventLoopAndFromOutsideArriveInOrder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "transport-test")
        let receiver = RaftTransport(eventLoopGroup: group, logger: logger)
        let sender = RaftTransport(eventLoopGroup: group, logger: logger)
        let received = ReceivedTerms()
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { frame in
            if let message = frame.message { received.terms.withLock { $0.append(message.term) } }
        }
        let address = "127.0.0.1:\(port)"
        @Sendable func frame(_ term: UInt64) -> RaftFrame {
            RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: term, body: .timeoutNow))
        }
        // The first send opens the connection: wait until one lands.
        let connected = ContinuousClock.now + .seconds(10)
        while received.terms.withLock({ $0.isEmpty }), ContinuousClock.now < connected {
            sender.send(frame(0), to: address)
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(received.terms.withLock { !$0.isEmpty }, "the connection never opened")
        received.terms.withLock { $0.removeAll() }

        // Terms 1...100 sent on the event loop (the one loop runs both ends; these writes are
        // deferred), then 101...200 from this task (queued to the loop).
        let loop = group.next()
        try await loop.submit {
            #expect(loop.inEventLoop)
            for term in UInt64(1)...100 { sender.send(frame(term), to: address) }
        }.get()
        for term in UInt64(101)...200 { sender.send(frame(term), to: address) }
        let delivered = ContinuousClock.now + .seconds(10)
        while received.terms.withLock({ $0.count < 200 }), ContinuousClock.now < delivered {
            try await Task.sleep(for: .milliseconds(10))
        }
        let terms = received.terms.withLock { $0 }
        #expect(terms.count == 200)
        #expect(terms.filter { $0 <= 100 } == Array(1...100))
        #expect(terms.filter { $0 > 100 } == Array(101...200))
        // Everything sent from the loop was queued before this task's sends began.
        #expect(terms.prefix(100) == ArraySlice(1...100))

        await sender.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }
}

extension RaftTransportTests {
    @Test("connections reset by their peer are logged with its address, one line per 10 s, and not counted as refused")
    func resetsAreThrottled() async throws {
        let (group, log, metrics) = (MultiThreadedEventLoopGroup(numberOfThreads: 1), RecordedLog(), TestMetrics())
        let (receiver, port) = try await Self.listening(on: group, log: log, metrics: metrics)
        let started = ContinuousClock.now
        for _ in 0..<5 {
            // Reset once the node took the connection: one reset before has no address to give.
            let descriptor = try connectLoopback(port)
            var local = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            let localPort = Int(UInt16(bigEndian: local.sin_port))
            let taken = try await eventually(.seconds(10)) {
                receiver.accepted.withLock { $0.values.contains { $0.remoteAddress?.port == localPort } }
            }
            #expect(taken)
            closeWithReset(descriptor)
        }
        #expect(try await eventually(.seconds(10)) { log.contains("reset") }, "\(log.lines)")
        try await Task.sleep(for: .milliseconds(300))
        let lines = log.lines.filter { $0.contains("closing the replication connection") }
        // One line for the five, unless the resets spread over more than 10 s (a loaded machine:
        // then one more for each 10 s begun).
        let periods = Int(started.duration(to: .now) / .seconds(10)) + 1
        #expect(
            (1...min(periods, 5)).contains(lines.count)
                && lines.allSatisfy { $0.contains("127.0.0.1") && $0.contains("the peer reset the connection") },
            "\(lines)")
        #expect((try? metrics.expectCounter("dwcp_transport_connections_rejected_total").totalValue) ?? 0 == 0)
        await receiver.close()
        try await group.shutdownGracefully()
    }

    /// A transport listening on a loopback port that logs to `log` and counts in `metrics`, with
    /// `liveness`; the terms of the frames it takes go to `received`.
    static func listening(
        on group: any EventLoopGroup, log: RecordedLog, metrics: TestMetrics,
        liveness: ConnectionLiveness = ConnectionLiveness(), received: ReceivedTerms? = nil
    ) async throws -> (RaftTransport, Int) {
        let receiver = RaftTransport(eventLoopGroup: group, logger: log.logger, metrics: metrics, liveness: liveness)
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { frame in
            if let term = frame.message?.term { received?.terms.withLock { $0.append(term) } }
        }
        return (receiver, port)
    }

    @Test("a connection that closes in the middle of a frame is counted and logged, saying how much of it came")
    func aFrameCutOffIsTold() async throws {
        let (group, log, metrics) = (MultiThreadedEventLoopGroup(numberOfThreads: 1), RecordedLog(), TestMetrics())
        let (receiver, port) = try await Self.listening(on: group, log: log, metrics: metrics)
        let whole = RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 1, body: .timeoutNow))
            .encoded()
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: whole + whole.prefix(whole.count - 3))).get()
        try await channel.close()
        #expect(
            try await eventually(.seconds(10)) {
                (try? metrics.expectCounter("dwcp_transport_connections_rejected_total").totalValue) == 1
            })
        // (Logged just after the count, on the event loop's thread.)
        #expect(
            try await eventually(.seconds(10)) {
                log.contains(
                    "closed in the middle of a frame (\(whole.count - 7) of its \(whole.count - 4) bytes came)")
            }, "\(log.lines)")
        await receiver.close()
        try await group.shutdownGracefully()
    }

    @Test("an intact frame of a message type this build does not know is skipped; the connection stays open")
    func unknownMessageTypesAreSkipped() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = RaftTransport(eventLoopGroup: group, logger: Logger(label: "transport-test"))
        let received = ReceivedTerms()
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { frame in
            if let message = frame.message { received.terms.withLock { $0.append(message.term) } }
        }
        // A newer member's frame: a header like any message's, then type 150 and fields unknown here.
        var writer = FrameWriter()
        writer.u32(0)
        writer.u8(RaftFrame.version)
        writer.string("region")
        writer.string("a")
        writer.string("b")
        writer.u64(9)
        writer.u8(150)
        writer.u64(12_345)
        writer.u32(CRC32C.checksum(Array(writer.bytes[4...])))
        var unknown = writer.bytes
        withUnsafeBytes(of: UInt32(unknown.count - 4).littleEndian) { unknown.replaceSubrange(0..<4, with: $0) }
        #expect {
            try RaftFrame(body: Array(unknown[4...]))
        } throws: { ($0 as? ReplicationError)?.code == .unknownMessage }
        func known(_ term: UInt64) -> [UInt8] {
            RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: term, body: .timeoutNow))
                .encoded()
        }

        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: unknown + known(1) + unknown)).get()
        try await Task.sleep(for: .milliseconds(100))
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: known(2))).get()
        let deadline = ContinuousClock.now + .seconds(10)
        while received.terms.withLock({ $0.count < 2 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(received.terms.withLock { $0 } == [1, 2])
        #expect(channel.isActive)

        try await channel.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }
}

extension RaftTransportTests {
    @Test("frames sent while the connection opens wait for it and arrive in order; past the limit they are dropped")
    func framesSentWhileConnectingWaitForTheConnection() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "transport-test")
        let receiver = RaftTransport(eventLoopGroup: group, logger: logger)
        let received = ReceivedTerms()
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { frame in
            if let message = frame.message { received.terms.withLock { $0.append(message.term) } }
        }
        let limit = RaftTransport.maxFramesWhileConnecting
        // Sent in one job of the loop the connection will open on, so none can find it open.
        let sender = RaftTransport(eventLoopGroup: group, logger: logger)
        try await group.next().submit {
            for term in 1...UInt64(limit + 20) {
                sender.send(
                    RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: term, body: .timeoutNow)),
                    to: "127.0.0.1:\(port)")
            }
        }.get()
        let deadline = ContinuousClock.now + .seconds(10)
        while received.terms.withLock({ $0.count < limit }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(received.terms.withLock { $0 } == Array(1...UInt64(limit)))

        // A frame past the byte limit is dropped, and so is every later one until the connection
        // is open: the peer gets no frames with a gap among them.
        received.terms.withLock { $0.removeAll() }
        let second = RaftTransport(eventLoopGroup: group, logger: logger)
        let address = "127.0.0.1:\(port)"
        try await group.next().submit {
            second.send(
                RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 1, body: .timeoutNow)),
                to: address)
            let tooBig = [UInt8](repeating: 7, count: RaftTransport.maxBytesWhileConnecting)
            second.send(
                RaftFrame(
                    group: "region",
                    message: RaftMessage(from: "a", to: "b", term: 2, body: .propose(id: 1, payloads: [tooBig]))),
                to: address)
            second.send(
                RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 3, body: .timeoutNow)),
                to: address)
        }.get()
        while received.terms.withLock({ !$0.contains(4) }), ContinuousClock.now < deadline {
            second.send(
                RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 4, body: .timeoutNow)),
                to: address)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(received.terms.withLock { $0 }.prefix(2) == [1, 4])
        #expect(second.peers.withLock { $0.values.allSatisfy { $0.waiting.isEmpty && !$0.waitingFull } })

        await second.close()
        await sender.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }
}

/// The terms of the frames a test's receiver got, in arrival order.
final class ReceivedTerms: Sendable {
    let terms = Mutex<[UInt64]>([])
}

extension RaftTransportTests {
    @Test("a peer that connects in is sent to at once, not after the back-off left from while it was down")
    func aPeerThatConnectsInEndsTheBackOff() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "transport-test")
        // B is down: a port nobody listens on (bound once to find it, then closed).
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let portB = try #require(probe.localAddress?.port)
        try await probe.close()
        let addressB = "127.0.0.1:\(portB)"
        let a = RaftTransport(eventLoopGroup: group, logger: logger)
        let heardByA = ReceivedTerms()
        let portA = try await a.listen(
            host: "127.0.0.1", port: 0,
            connected: { frame in if frame.sender == "b" { a.retryNow(addressB) } }
        ) { frame in
            if let message = frame.message { heardByA.terms.withLock { $0.append(message.term) } }
        }
        let key = RaftTransport.PeerKey(address: addressB, lane: .raft)
        func frame(_ from: String, _ to: String, _ term: UInt64) -> RaftFrame {
            RaftFrame(group: "region", message: RaftMessage(from: from, to: to, term: term, body: .timeoutNow))
        }
        a.send(frame("a", "b", 1), to: addressB)
        let failed = ContinuousClock.now + .seconds(10)
        while a.peers.withLock({ ($0[key]?.failures ?? 0) == 0 }), ContinuousClock.now < failed {
            try await Task.sleep(for: .milliseconds(10))
        }
        // As after a long outage: the next try is a minute away.
        a.peers.withLock {
            $0[key]?.failures = 6
            $0[key]?.retryAt = .now + .seconds(60)
        }

        // B comes back and talks to A: A sends to B again at once.
        let b = RaftTransport(eventLoopGroup: group, logger: logger)
        let heardByB = ReceivedTerms()
        _ = try await b.listen(host: "127.0.0.1", port: portB) { frame in
            if let message = frame.message { heardByB.terms.withLock { $0.append(message.term) } }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while heardByA.terms.withLock({ $0.isEmpty }), ContinuousClock.now < deadline {
            b.send(frame("b", "a", 2), to: "127.0.0.1:\(portA)")
            try await Task.sleep(for: .milliseconds(20))
        }
        try #require(heardByA.terms.withLock { !$0.isEmpty }, "B never reached A")
        #expect(a.peers.withLock { $0[key]?.failures } == 0)
        while heardByB.terms.withLock({ $0.isEmpty }), ContinuousClock.now < deadline {
            a.send(frame("a", "b", 3), to: addressB)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(heardByB.terms.withLock { $0 }.first == 3, "A still waited out its back-off")

        await a.close()
        await b.close()
        try await group.shutdownGracefully()
    }
}

extension RaftTransportTests {
    @Test(
        "past the cap on inbound connections one more is closed as it opens; those open stay, and a freed place is taken again"
    )
    func inboundConnectionsAreCapped() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = RaftTransport(
            eventLoopGroup: group, logger: Logger(label: "transport-test"), maxInboundConnections: 2)
        let received = ReceivedTerms()
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { frame in
            if let message = frame.message { received.terms.withLock { $0.append(message.term) } }
        }
        func frame(_ term: UInt64) -> [UInt8] {
            RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: term, body: .timeoutNow))
                .encoded()
        }
        func connect() async throws -> any Channel {
            try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        }
        func arrives(_ term: UInt64, on channel: any Channel) async throws -> Bool {
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: frame(term))).get()
            let deadline = ContinuousClock.now + .seconds(10)
            while !received.terms.withLock({ $0.contains(term) }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            return received.terms.withLock { $0.contains(term) }
        }
        /// Whether the receiver closes `channel` within two seconds.
        func closedByReceiver(_ channel: any Channel) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(2)
            while channel.isActive, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            return !channel.isActive
        }

        let first = try await connect()
        let second = try await connect()
        #expect(try await arrives(1, on: first))
        #expect(try await arrives(2, on: second))
        let third = try await connect()
        #expect(try await closedByReceiver(third), "a third connection stayed open past a cap of two")
        #expect(first.isActive && second.isActive)

        try await first.close()
        let deadline = ContinuousClock.now + .seconds(10)
        while receiver.accepted.withLock({ $0.count }) > 1, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let fourth = try await connect()
        #expect(try await arrives(4, on: fourth))
        #expect(!(try await closedByReceiver(fourth)))

        try await second.close()
        try await fourth.close()
        await receiver.close()
        try await group.shutdownGracefully()
    }
}

extension RaftTransportTests {
    @Test("a peer that cannot be reached is logged in the system's words, once")
    func unreachablePeerInWords() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let port = try closedPort()
        let log = RecordedLog()
        let sender = RaftTransport(eventLoopGroup: group, logger: log.logger)
        let frame = RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 1, body: .timeoutNow))
        sender.send(frame, to: "127.0.0.1:\(port)")
        #expect(
            try await eventually(.seconds(10)) { log.contains("cannot reach peer 127.0.0.1:\(port)") },
            "\(log.lines)")
        let lines = log.lines.filter { $0.contains("cannot reach peer 127.0.0.1:\(port)") }
        #expect(lines.count == 1 && lines[0].hasSuffix("(raft): Connection refused (attempt 1)"), "\(log.lines)")
        await sender.close()
        try await group.shutdownGracefully()
    }
}

extension RaftTransportTests {
    @Test("an HTTP request on the replication port is answered in HTTP, saying where it is, then closed")
    func httpRequestIsAnswered() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = RaftTransport(eventLoopGroup: group, logger: Logger(label: "transport-test"))
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { _ in }
        // Raw bytes, as a plain HTTP client sends them (the CLI given the wrong port, curl); a
        // receiver that never answers or closes fails the test in 5 s rather than hang it.
        let (answer, closed) = try exchangeRaw(
            Array("GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8), port: port)
        #expect(closed, "the receiver closed the connection after its answer")
        let text = String(decoding: answer, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text)")
        #expect(text.contains(#"{"error":{"code":"invalid","message":"this is a dwcp replication port"#), "\(text)")
        await receiver.close()
        try await group.shutdownGracefully()
    }
}
