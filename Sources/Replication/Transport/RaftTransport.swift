import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The replication port: a TCP listener that hands each incoming ``RaftFrame`` to a receiver, and
/// outgoing connections per peer address (one per ``Lane``), opened on first use and reopened with
/// back-off after a failure. Sending never blocks: a frame for a peer that is not connected is
/// dropped (Raft resends what matters). A connection that sends a malformed or oversized frame is
/// closed and logged; the node goes on.
public final class RaftTransport: Sendable {
    /// Called on the connection's event loop for every decoded frame: it must return at once
    /// (step a state machine under a lock, queue the frame), never block or wait.
    public typealias Receiver = @Sendable (RaftFrame) -> Void
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// Connections closed because a frame on them was malformed or oversized.
    let connectionsRejected: Counter
    let peers = Mutex<[PeerKey: PeerState]>([:])
    let server = Mutex<(any Channel)?>(nil)
    /// Connections peers opened to this node, by channel id, for ``close()``.
    let accepted = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// Set by ``close()``: nothing is sent or connected after it (an atomic load on every send).
    let closed = Atomic<Bool>(false)

    /// Which of a peer's outgoing connections a frame takes. Status questions and answers have a
    /// connection of their own: a member too old to know them closes the connection they came on,
    /// and that must not be the one Raft's messages take.
    public enum Lane: String, Sendable {
        case raft, status
    }

    struct PeerKey: Hashable, Sendable {
        var address: String
        var lane: Lane
    }

    struct PeerState: Sendable {
        var channel: (any Channel)?
        var connecting = false
        var failures = 0
        var retryAt: ContinuousClock.Instant = .now
    }

    public init(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) {
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        connectionsRejected = Counter(label: "dwcp_transport_connections_rejected_total", factory: metrics)
    }

    /// Starts listening, handing every frame received to `receive`; returns the port bound
    /// (useful with port 0).
    public func listen(host: String, port: Int, receive: @escaping Receiver) async throws -> Int {
        let logger = logger
        let rejected = connectionsRejected
        let channel = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                let key = ObjectIdentifier(channel)
                accepted.withLock { $0[key] = channel }
                channel.closeFuture.whenComplete { [self] _ in _ = accepted.withLock { $0.removeValue(forKey: key) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(RaftFrameDecoder(maxFrameBytes: RaftFrame.maxFrameBytes, logger: logger)))
                    try channel.pipeline.syncOperations.addHandler(
                        InboundFrameHandler(receive: receive, logger: logger, rejected: rejected))
                }
            }
            .bind(host: host, port: port).get()
        server.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    /// Sends a frame to the peer at `address` (`host:port`) on `lane`'s connection, connecting
    /// first if needed.
    public func send(_ frame: RaftFrame, to address: String, lane: Lane = .raft) {
        let key = PeerKey(address: address, lane: lane)
        enum Route {
            case channel(any Channel)
            case connect
            case drop
        }
        if closed.load(ordering: .acquiring) { return }
        let route: Route = peers.withLock { peers in
            var state = peers[key] ?? PeerState()
            defer { peers[key] = state }
            if let channel = state.channel, channel.isActive { return .channel(channel) }
            state.channel = nil
            guard !state.connecting, ContinuousClock.now >= state.retryAt else { return .drop }
            state.connecting = true
            return .connect
        }
        switch route {
        case .channel(let channel):
            let buffer = channel.allocator.buffer(bytes: frame.encoded())
            // On the channel's own event loop (the Raft driver's task runs on one) the write is
            // left for after the current job: a loopback write runs the receiver's TCP stack
            // inline, and the caller has more urgent work (its own log write, waking the views).
            // Writes from other threads go through the same queue of the loop, so frames to a
            // peer still leave in the order they were sent (RaftTransportTests).
            let loop = channel.eventLoop
            if loop.inEventLoop {
                loop.execute { channel.writeAndFlush(buffer, promise: nil) }
            } else {
                channel.writeAndFlush(buffer, promise: nil)
            }
        case .connect:
            // Not connected: this frame is dropped (Raft resends) while the connection opens.
            connect(to: key)
        case .drop:
            break
        }
    }

    private func connect(to key: PeerKey) {
        let address = key.address
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            logger.error("peer address \(address) is not host:port")
            peers.withLock { peers in
                peers[key]?.connecting = false
                peers[key]?.retryAt = .now + .seconds(2)
            }
            return
        }
        let host = String(address[..<colon])
        let logger = logger
        ClientBootstrap(group: eventLoopGroup)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Peers never send on our outgoing connection; anything that comes is ignored.
                    try channel.pipeline.syncOperations.addHandler(DiscardInboundHandler())
                }
            }
            .connect(host: host, port: port)
            .whenComplete { [self] result in
                peers.withLock { peers in
                    var state = peers[key] ?? PeerState()
                    state.connecting = false
                    switch result {
                    case .success(let channel):
                        if closed.load(ordering: .acquiring) {
                            channel.close(promise: nil)
                            return
                        }
                        state.channel = channel
                        state.failures = 0
                    case .failure(let error):
                        state.failures += 1
                        let backoff = min(50 * (1 << min(state.failures, 6)), 2_000)
                        state.retryAt = .now + .milliseconds(backoff)
                        if state.failures == 1 || state.failures % 50 == 0 {
                            logger.notice(
                                "cannot reach peer \(address) (\(key.lane.rawValue)): \(error) (attempt \(state.failures))"
                            )
                        }
                    }
                    peers[key] = state
                }
            }
    }

    /// Closes the listener and every connection, both ways; nothing is sent afterwards.
    public func close() async {
        closed.store(true, ordering: .releasing)
        let listener = server.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await listener?.close()
        let channels = peers.withLock { peers in
            defer { peers = [:] }
            return peers.values.compactMap(\.channel)
        }
        for channel in channels { try? await channel.close() }
        let inbound = accepted.withLock { accepted in
            defer { accepted = [:] }
            return Array(accepted.values)
        }
        for channel in inbound { try? await channel.close() }
    }
}

/// Hands decoded frames to the transport's receiver; closes the connection on a decoding error.
final class InboundFrameHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = RaftFrame

    let receive: RaftTransport.Receiver
    let logger: Logger
    let rejected: Counter

    init(receive: @escaping RaftTransport.Receiver, logger: Logger, rejected: Counter) {
        self.receive = receive
        self.logger = logger
        self.rejected = rejected
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let peer = context.remoteAddress.map { "\($0)" } ?? "a peer"
        logger.warning("closing the replication connection from \(peer): \(error)")
        // A frame that failed to decode (not a connection reset by a peer going away).
        if error is ReplicationError { rejected.increment() }
        context.close(promise: nil)
    }
}

/// Drops whatever arrives on an outgoing connection.
final class DiscardInboundHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
