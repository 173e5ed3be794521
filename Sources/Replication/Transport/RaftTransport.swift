import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The replication port: a TCP listener that hands each incoming ``RaftFrame`` to a receiver, and
/// outgoing connections per peer address (one per ``Lane``), opened on first use and reopened with
/// back-off after a failure. Sending never blocks: frames sent while a connection opens wait for it
/// (a few, see ``maxFramesWhileConnecting``); a frame for a peer that cannot be reached is dropped
/// (Raft resends what matters). A connection that sends a malformed or oversized frame is closed
/// and logged; the node goes on. With ``PeerTLS`` every connection, both ways, is mutual TLS.
/// Once a member knows its region's id, every connection it opens starts with a ``ConnectionHello``
/// naming it; one that names another region is answered and closed, and one that names none cannot
/// lead or campaign (`RaftTransport+Hello.swift`).
public final class RaftTransport: Sendable {
    /// Called on the connection's event loop for every decoded frame: it must return at once
    /// (step a state machine under a lock, queue the frame), never block or wait.
    public typealias Receiver = @Sendable (RaftFrame) -> Void
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    /// Connections closed because a frame on them was malformed or oversized, or stopped arriving.
    let connectionsRejected: Counter
    /// Connections closed as they opened because ``maxInboundConnections`` were open already.
    let connectionsRefused: Counter
    /// At most this many connections from peers are open at once; one more is closed as it opens.
    /// A member opens two to each other member (one per ``Lane``), so a region of five needs eight;
    /// the cap bounds what a flood of connections can take (each may buffer up to one frame of
    /// ``RaftFrame/maxFrameBytes`` while it arrives). Without ``tls`` anyone who reaches the port
    /// can take these places; with it, a connection that has not proved itself within
    /// ``handshakeDeadline`` gives its place up.
    public let maxInboundConnections: Int
    /// Mutual TLS on every connection, or nil for plain TCP. Replaced by ``reloadTLS(_:)``: each
    /// connection opened from then on uses the new certificates; those open keep theirs.
    let currentTLS: Mutex<PeerTLS?>
    /// The certificates in use now (nil: plain TCP).
    public var tls: PeerTLS? { currentTLS.withLock { $0 } }
    /// Connections closed because their peer did not prove itself (its TLS handshake failed or did
    /// not finish in time, its certificate was refused or speaks for another member).
    let handshakesFailed: Counter
    /// With TLS, accepted connections whose peer has not yet proved itself: at most
    /// ``maxUnprovenConnections``, so connections that never finish a handshake cannot take the
    /// places members need.
    let unproven = Mutex<Set<ObjectIdentifier>>([])
    /// A member opens two connections to each other member at start: 16 covers a region of
    /// five starting at once, twice.
    static let maxUnprovenConnections = 16
    /// How long a TLS handshake may take, either way, before its connection is closed: a
    /// connection that never starts one would hold a place (inbound) or a peer's queue (outbound).
    let handshakeDeadline: TimeAmount
    /// How a connection whose peer is gone without closing it is noticed, both ways.
    public let liveness: ConnectionLiveness
    /// Refusals, failed handshakes, frames that do not decode and frames under another member's
    /// name are logged at most one line per 10 s each.
    let refusalsLogged = Mutex(LogThrottle())
    let rejectionsLogged = Mutex(LogThrottle())
    /// Apart from damaged frames: a stuck peer must not hide another's damaged frame.
    let stallsLogged = Mutex(LogThrottle())
    /// Apart from frames that do not decode: a member that speaks TLS to this plain one dials
    /// again every second or so, and must not hide another member's damaged frame.
    let foreignProtocolsLogged = Mutex(LogThrottle())
    let handshakeFailuresLogged = Mutex(LogThrottle())
    let impersonationsLogged = Mutex(LogThrottle())
    /// Connections that failed under the node (reset by their peer): anyone who can reach the
    /// port can cause them, as fast as they like.
    let connectionErrorsLogged = Mutex(LogThrottle())
    let peers = Mutex<[PeerKey: PeerState]>([:])
    let server = Mutex<(any Channel)?>(nil)
    /// Connections peers opened to this node, by channel id, for ``close()``.
    let accepted = Mutex<[ObjectIdentifier: any Channel]>([:])
    /// What ``listen(host:port:backlog:connected:receive:)`` hands frames to, let go by ``close()``
    /// (see ``ReceiverSlot``).
    let receivers = Mutex<[ReceiverSlot]>([])
    /// Set by ``close()``: nothing is sent or connected after it (an atomic load on every send).
    let closed = Atomic<Bool>(false)
    /// Who this member is and its region's id, said first on every connection it opens and
    /// checked against every hello it receives (``identify(as:group:regionID:address:)``); nil until set.
    let identity = Mutex<Identity?>(nil)
    /// Hellos of another region, received and answered, logged at most one line per 10 s each way.
    let otherRegionsLogged = Mutex(LogThrottle())
    let refusalsByOtherRegionsLogged = Mutex(LogThrottle())
    let unvouchedLogged = Mutex(LogThrottle())
    /// How long a member waits before it dials again a peer that answered its hello as a member of
    /// another region (its frames would be refused anyway).
    static let otherRegionBackoff: Duration = .seconds(5)
    /// The addresses whose peers answered as members of another region: their region id, and when.
    let otherRegions = Mutex<[String: (regionID: UInt64, at: ContinuousClock.Instant)]>([:])

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
        /// Frames sent while the connection opens, in order: written once it is open, dropped if
        /// it fails.
        var waiting: [[UInt8]] = []
        /// A frame did not fit: it and every later one are dropped until the connection opens
        /// (a gap in the middle would be of no use to the peer, a snapshot's chunks for one).
        var waitingFull = false
        var failures = 0
        var retryAt: ContinuousClock.Instant = .now
        /// The member the address belongs to (the recipient of the frames sent to it): with
        /// TLS, its certificate must speak for that member.
        var member: String?
        /// Why the last attempt to connect failed, in words; nil once one succeeds.
        var lastFailure: String?
        /// With TLS, the member the certificate at the address spoke for when it was not
        /// ``member`` (the last attempt's).
        var certifiedAs: String?

        mutating func dropWaiting() {
            waiting = []
            waitingFull = false
        }
    }

    /// At most this many frames, and bytes, wait for a connection to open; the first that does not
    /// fit and all later ones are dropped.
    /// (The first frames to a peer used to be dropped while it connected: a restarted member's
    /// first vote request, a status survey's first question.)
    static let maxFramesWhileConnecting = 64
    static let maxBytesWhileConnecting = 4 << 20

    public init(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance, maxInboundConnections: Int = 64,
        tls: PeerTLS? = nil, handshakeDeadline: TimeAmount = .seconds(5),
        liveness: ConnectionLiveness = ConnectionLiveness()
    ) {
        self.handshakeDeadline = handshakeDeadline
        self.liveness = liveness
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.maxInboundConnections = maxInboundConnections
        currentTLS = Mutex(tls)
        connectionsRejected = Counter(label: "dwcp_transport_connections_rejected_total", factory: metrics)
        connectionsRefused = Counter(label: "dwcp_transport_connections_refused_total", factory: metrics)
        handshakesFailed = Counter(label: "dwcp_transport_tls_handshakes_failed_total", factory: metrics)
    }

    /// Starts listening, handing every frame received to `receive`; returns the port bound
    /// (useful with port 0). `connected` is called with the first frame of every connection a peer
    /// opens, before `receive`: a sign that the peer is up (see ``retryNow(_:)``). A connection's
    /// hello is checked here (``identify(as:group:regionID:address:)``) and never reaches `receive`.
    /// A connection that delivers a snapshot chunk while `backlog` is full stops reading until
    /// it drains (``InboundBacklog``).
    public func listen(
        host: String, port: Int, backlog: InboundBacklog? = nil, connected: Receiver? = nil,
        receive: @escaping Receiver
    ) async throws -> Int {
        // Kept by the transport only once the listener is (below): a listen that fails leaves
        // nothing holding the receivers, and the member with them.
        let slot = ReceiverSlot(receive: receive, connected: connected)
        let bound: any Channel
        do {
            bound = try await bootstrap(handing: slot, backlog: backlog).bind(host: host, port: port).get()
        } catch {
            slot.empty()
            throw error
        }
        // A transport closed while it bound does not keep the listener (see close()).
        let kept = server.withLock { server -> Bool in
            guard !closed.load(ordering: .acquiring) else { return false }
            server = bound
            receivers.withLock { $0.append(slot) }
            return true
        }
        guard kept else {
            slot.empty()
            try? await bound.close()
            throw ReplicationError(.unavailable, "the replication port closed as it started listening")
        }
        return bound.localAddress?.port ?? port
    }

    /// The listener's bootstrap: each connection it accepts hands its frames to the receivers
    /// `slot` holds (and stops reading while `backlog` is full).
    private func bootstrap(handing slot: ReceiverSlot, backlog: InboundBacklog?) -> ServerBootstrap {
        let logger = logger
        let secured = tls != nil
        let stalledFrameDeadline = TimeAmount(liveness.stalledFrameDeadline)
        return ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // On the listener too: an option the kernel refuses then fails the start, in words,
            // where on an accepted connection NIO would close it and tell no one.
            .serverChannelOptions(liveness)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOptions(liveness)
            .childChannelInitializer { [self] channel in
                let key = ObjectIdentifier(channel)
                // Checked under the lock that close() drains the connections under: one accepted
                // as the transport closes is either drained with the others or closed here, never
                // left open (its handler would hold the receiver, and the member, for good).
                let taken = accepted.withLock { open -> Bool? in
                    guard !closed.load(ordering: .acquiring) else { return nil }
                    guard open.count < maxInboundConnections else { return false }
                    open[key] = channel
                    return true
                }
                // The receivers, taken once for the connection (a lock per frame cost the leader
                // twice the CPU per write in bench/region); its handler lets go of them as it closes.
                guard let admitted = taken, let (receive, connected) = slot.receivers else { return channel.close() }
                // With TLS, a place among the connections still proving themselves too.
                // (Only for a connection admitted: a place taken for one refused would never be given back.)
                let proving =
                    admitted
                    && (!secured
                        || unproven.withLock { unproven in
                            guard unproven.count < Self.maxUnprovenConnections else { return false }
                            unproven.insert(key)
                            return true
                        })
                guard admitted, proving else {
                    if admitted { _ = accepted.withLock { $0.removeValue(forKey: key) } }
                    noteRefusal(of: channel, unproven: admitted)
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(CloseOnActiveHandler())
                    }
                }
                channel.closeFuture.whenComplete { [self] _ in
                    _ = accepted.withLock { $0.removeValue(forKey: key) }
                    _ = unproven.withLock { $0.remove(key) }
                }
                // The certificates of now (a reload replaces them for the connections after it).
                let tls = self.tls
                return channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.serverContext))
                        let peer = channel.remoteAddress
                        try channel.pipeline.syncOperations.addHandler(
                            TLSHandshakeWatcher(side: .accepted, deadline: handshakeDeadline) { [self] outcome in
                                _ = unproven.withLock { $0.remove(key) }
                                if case .failure(let error) = outcome { noteHandshakeFailure(from: peer, error) }
                            })
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(
                            RaftFrameDecoder(
                                maxFrameBytes: RaftFrame.maxFrameBytes, logger: logger,
                                stalledFrameDeadline: stalledFrameDeadline)))
                    let handler = InboundFrameHandler(
                        receive: receive, connected: connected, backlog: backlog, logger: logger,
                        greeted: { [self] hello, peer in greeted(by: hello, from: peer) },
                        ownRegionID: { [self] in regionID },
                        droppedUnvouched: { [self] peer, frame in droppedUnvouched(from: peer, frame) },
                        failed: { [self] peer, error in noteConnectionError(from: peer, error) }
                    ) { [self] peer, error in noteRejection(from: peer, error) }
                    if secured {
                        let peer = channel.remoteAddress
                        handler.impersonated = { [self] certified, sender in
                            noteImpersonation(from: peer, certified: certified, sender: sender)
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
    }

    /// Uses `tls` for every connection opened from now on, both ways (connections open keep the
    /// certificates they were opened with). Only a transport started with TLS takes new ones:
    /// a region does not switch between plain TCP and TLS while it runs.
    public func reloadTLS(_ tls: PeerTLS) throws {
        try currentTLS.withLock { current in
            guard current != nil else {
                throw ReplicationError(
                    .invalidConfiguration, "the replication port runs without TLS: restart with --peer-cert-file")
            }
            current = tls
        }
    }

    /// Counts a connection refused for a cap, and logs it, at most one line per 10 s.
    private func noteRefusal(of channel: any Channel, unproven: Bool) {
        connectionsRefused.increment()
        guard let held = refusalsLogged.withLock({ $0.admit() }) else { return }
        let peer = channel.remoteAddress.map { "\($0)" } ?? "a peer"
        let why =
            unproven
            ? "\(Self.maxUnprovenConnections) are still in their TLS handshake"
            : "\(maxInboundConnections) are open already"
        logger.warning("refusing a replication connection from \(peer)\(LogThrottle.more(held)): \(why)")
    }

    /// Logs a connection that failed under the node: one its peer reset or dropped (anyone who
    /// can reach the port can do that as fast as they like) at most one line per 10 s; any other
    /// error each time.
    private func noteConnectionError(from peer: SocketAddress?, _ error: any Error) {
        let peer = peer.map { "\($0)" } ?? "a peer"
        guard let dropped = Self.droppedByPeer(error) else {
            logger.warning("closing the replication connection from \(peer): \(error)")
            return
        }
        guard let held = connectionErrorsLogged.withLock({ $0.admit() }) else { return }
        logger.warning("closing the replication connection from \(peer)\(LogThrottle.more(held)): \(dropped)")
    }

    /// What an error that only says the peer went away means, in words; nil for any other.
    static func droppedByPeer(_ error: any Error) -> String? {
        guard let error = error as? IOError else { return nil }
        switch error.errnoCode {
        case ECONNRESET: return "the peer reset the connection"
        case EPIPE: return "the peer closed the connection (broken pipe)"
        case ETIMEDOUT: return "the connection timed out"
        default: return nil
        }
    }

    /// Counts a connection closed for what it sent (a frame that does not decode, or another
    /// protocol's bytes), and logs it, at most one line per 10 s: a member that cannot talk to
    /// this one (TLS on one side only) dials again several times a second.
    private func noteRejection(from peer: SocketAddress?, _ error: ReplicationError) {
        connectionsRejected.increment()
        let admitted =
            switch error.code {
            case .foreignProtocol, .httpRequest: foreignProtocolsLogged.withLock { $0.admit() }
            case .stalled: stallsLogged.withLock { $0.admit() }
            default: rejectionsLogged.withLock { $0.admit() }
            }
        guard let held = admitted else { return }
        let peer = peer.map { "\($0)" } ?? "a peer"
        logger.warning("closing the replication connection from \(peer)\(LogThrottle.more(held)): \(error)")
    }

    /// Counts a connection closed because a frame on it named a sender other than the member its
    /// certificate speaks for, and logs it, at most one line per 10 s.
    private func noteImpersonation(from peer: SocketAddress?, certified: String?, sender: String) {
        connectionsRejected.increment()
        guard let held = impersonationsLogged.withLock({ $0.admit() }) else { return }
        let peer = peer.map { "\($0)" } ?? "a peer"
        let certificate = certified.map { "speaks for \($0)" } ?? "names no member (no Common Name)"
        logger.warning(
            "closing the replication connection from \(peer)\(LogThrottle.more(held)): its certificate \(certificate), but it sent a frame as \(sender)"
        )
    }

    /// Counts a connection from a peer that did not prove itself (its handshake failed or did not
    /// finish), and logs it, at most one line per 10 s.
    private func noteHandshakeFailure(from peer: SocketAddress?, _ error: any Error) {
        handshakesFailed.increment()
        guard let held = handshakeFailuresLogged.withLock({ $0.admit() }) else { return }
        let peer = peer.map { "\($0)" } ?? "a peer"
        logger.warning(
            "closing the replication connection from \(peer)\(LogThrottle.more(held)): \(TLSHandshakeWatcher.explain(error))"
        )
    }

    /// Sends a frame to the peer at `address` (`host:port`) on `lane`'s connection, connecting
    /// first if needed.
    public func send(_ frame: RaftFrame, to address: String, lane: Lane = .raft) {
        send(frame, to: address, lane: lane, tellingWhenWritten: false)
    }

    /// ``send(_:to:lane:)``, returning what completes once the frame was written to the
    /// connection, when it was handed to an open one; nil when it waits for the connection to open
    /// (a bounded queue), or was dropped. (A promise per frame: not for Raft's own messages.)
    public func sendTellingWhenWritten(_ frame: RaftFrame, to address: String, lane: Lane = .raft)
        -> EventLoopFuture<Void>?
    {
        send(frame, to: address, lane: lane, tellingWhenWritten: true)
    }

    @discardableResult
    private func send(_ frame: RaftFrame, to address: String, lane: Lane, tellingWhenWritten: Bool)
        -> EventLoopFuture<Void>?
    {
        let key = PeerKey(address: address, lane: lane)
        enum Route {
            case channel(any Channel)
            case connect
            case done
        }
        if closed.load(ordering: .acquiring) { return nil }
        // Encoded before the lock, which every send takes (a snapshot chunk is a megabyte).
        let bytes = frame.encoded()
        let route: Route = peers.withLock { peers in
            var state = peers[key] ?? PeerState()
            defer { peers[key] = state }
            if let channel = state.channel, channel.isActive { return .channel(channel) }
            state.channel = nil
            var opens = false
            state.member = frame.recipient
            if !state.connecting {
                // Not reachable lately: dropped until the back-off is over (Raft resends).
                guard ContinuousClock.now >= state.retryAt else { return .done }
                state.connecting = true
                opens = true
            }
            if !state.waitingFull, state.waiting.count < Self.maxFramesWhileConnecting,
                state.waiting.reduce(bytes.count, { $0 + $1.count }) <= Self.maxBytesWhileConnecting
            {
                state.waiting.append(bytes)
            } else {
                state.waitingFull = true
            }
            return opens ? .connect : .done
        }
        switch route {
        case .channel(let channel):
            let buffer = channel.allocator.buffer(bytes: bytes)
            // On the channel's own event loop (the Raft driver's task runs on one) the write is
            // left for after the current job: a loopback write runs the receiver's TCP stack
            // inline, and the caller has more urgent work (its own log write, waking the views).
            // Writes from other threads go through the same queue of the loop, so frames to a
            // peer still leave in the order they were sent (RaftTransportTests).
            let loop = channel.eventLoop
            let written = tellingWhenWritten ? loop.makePromise(of: Void.self) : nil
            if loop.inEventLoop {
                loop.execute { channel.writeAndFlush(buffer, promise: written) }
            } else {
                channel.writeAndFlush(buffer, promise: written)
            }
            return written?.futureResult
        case .connect:
            connect(to: key)
        case .done:
            break
        }
        return nil
    }

    private func connect(to key: PeerKey) {
        let address = key.address
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            logger.error("peer address \(address) is not host:port")
            peers.withLock { peers in
                peers[key]?.connecting = false
                peers[key]?.retryAt = .now + .seconds(2)
                peers[key]?.dropWaiting()
            }
            return
        }
        let host = String(address[..<colon])
        let member = peers.withLock { $0[key]?.member }
        let logger = logger
        let tls = tls
        let handshakesFailed = handshakesFailed
        let handshakeDeadline = handshakeDeadline
        // The connection counts as open once TCP is up, or with TLS once the handshake is done:
        // a peer that refuses this member's certificate, or one whose certificate is refused, is
        // a peer that cannot be reached (back-off, logged), not an open connection.
        let loop = eventLoopGroup.next()
        let ready = loop.makePromise(of: (any Channel).self)
        ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOptions(liveness)
            // Past the kernel's first SYN retry (1 s): an attempt begun during a partition that
            // heals within it connects, rather than failing as the retry goes out.
            .connectTimeout(.milliseconds(1500))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // The peer's certificate must name the host dialled: by name (also sent
                        // as SNI) or, for an IP address, by the address connected to.
                        let name = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls.clientContext, serverHostname: name))
                        try channel.pipeline.syncOperations.addHandler(
                            TLSHandshakeWatcher(side: .dialled(expectedMember: member), deadline: handshakeDeadline) {
                                outcome in
                                if case .failure = outcome { handshakesFailed.increment() }
                                ready.completeWith(outcome)
                            })
                    }
                    // Peers send nothing on our outgoing connection but a hello of another
                    // region, as they close it: that one is heard, anything else ignored.
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(RaftFrameDecoder(maxFrameBytes: 1 << 16, logger: logger)))
                    try channel.pipeline.syncOperations.addHandler(
                        AnsweredHelloHandler { [self] hello in refused(at: key, by: hello) })
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel): if tls == nil { ready.succeed(channel) }
                case .failure(let error): ready.fail(error)
                }
            }
        ready.futureResult.whenComplete { [self] result in
            // On the new channel's event loop: the frames that waited are written before any
            // sent from now on, which other threads queue to this loop behind this job.
            let waiting = peers.withLock { peers -> [[UInt8]] in
                var state = peers[key] ?? PeerState()
                let waiting = state.waiting
                state.connecting = false
                state.dropWaiting()
                defer { peers[key] = state }
                switch result {
                case .success(let channel):
                    if closed.load(ordering: .acquiring) {
                        channel.close(promise: nil)
                        return []
                    }
                    state.channel = channel
                    state.failures = 0
                    state.lastFailure = nil
                    state.certifiedAs = nil
                    // The hello goes first, before the frames that waited.
                    return (hello(to: state.member).map { [$0.encoded()] } ?? []) + waiting
                case .failure(let error):
                    state.failures += 1
                    state.lastFailure = Self.unreachable(error)
                    state.certifiedAs = (error as? TLSFailure.WrongMember)?.certified
                    let backoff = min(50 * (1 << min(state.failures, 6)), 2_000)
                    state.retryAt = .now + .milliseconds(backoff)
                    if state.failures == 1 || state.failures % 50 == 0 {
                        let reason = Self.unreachable(error)
                        logger.notice(
                            "cannot reach peer \(address) (\(key.lane.rawValue)): \(reason) (attempt \(state.failures))"
                        )
                    }
                    return []
                }
            }
            guard case .success(let channel) = result, !waiting.isEmpty else { return }
            for bytes in waiting { channel.write(channel.allocator.buffer(bytes: bytes), promise: nil) }
            channel.flush()
        }
    }

    /// Why a peer could not be reached, in words: the system's for a connection that failed
    /// ("Connection refused"), not NIO's whole error; a failed TLS handshake as the watcher tells it.
    static func unreachable(_ error: any Error) -> String {
        guard let error = error as? NIOConnectionError, let first = error.connectionErrors.first else {
            return TLSHandshakeWatcher.explain(error)
        }
        guard let failure = first.error as? IOError else { return "\(first.error)" }
        return String(cString: strerror(failure.errnoCode))
    }

    /// Lets the next frame for `address` connect at once, on every lane, instead of waiting out
    /// the back-off left from earlier failures: the peer has just connected to this node, so it is
    /// up again. Without this a restarted member heard nothing from a member that had been
    /// failing to reach it for up to 2 s (no entries from its leader, no status answers).
    public func retryNow(_ address: String) {
        peers.withLock { peers in
            for lane in [Lane.raft, .status] {
                let key = PeerKey(address: address, lane: lane)
                guard var state = peers[key], state.failures > 0 else { continue }
                state.failures = 0
                state.retryAt = .now
                peers[key] = state
            }
        }
    }

    /// Why the last attempt to connect to `address` on `lane` failed, and, with TLS, the member
    /// the certificate there spoke for when it was another; nil when the last attempt succeeded
    /// or none was made.
    public func lastFailure(at address: String, lane: Lane) -> (reason: String, certifiedAs: String?)? {
        peers.withLock { peers in
            guard let state = peers[PeerKey(address: address, lane: lane)], let reason = state.lastFailure else {
                return nil
            }
            return (reason, state.certifiedAs)
        }
    }

    /// Drops what this transport keeps for `address` (its connections on every lane, and their
    /// state): an address asked once that is no member's (an addition refused).
    public func forget(_ address: String) {
        let channels = peers.withLock { peers in
            [Lane.raft, .status].compactMap { lane in
                peers.removeValue(forKey: PeerKey(address: address, lane: lane))?.channel
            }
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Closes the listener and every connection, both ways; nothing is sent afterwards.
    public func close() async {
        closed.store(true, ordering: .releasing)
        for slot in receivers.withLock({ $0 }) { slot.empty() }
        let listener = server.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await listener?.close()
        let channels = peers.withLock { peers in
            defer { peers = [:] }
            return peers.values.compactMap(\.channel)
        }
        let inbound = accepted.withLock { accepted in
            defer { accepted = [:] }
            return Array(accepted.values)
        }
        // At once: with TLS a close waits (up to 0.5 s) for the peer's goodbye.
        await withTaskGroup(of: Void.self) { group in
            for channel in channels + inbound { group.addTask { try? await channel.close() } }
        }
    }
}

/// Hands decoded frames to the transport's receiver (the first one of the connection to
/// `connected` too); closes the connection on a decoding error. Used on its channel's event loop only.
final class InboundFrameHandler: ChannelInboundHandler {
    typealias InboundIn = RaftFrame

    /// The transport's receivers, let go of as the connection closes (``ReceiverSlot``).
    private var receive: RaftTransport.Receiver?
    private var connected: RaftTransport.Receiver?
    /// Holds the connection's reads after a snapshot chunk while the chunks waiting for the disk
    /// are at their limit.
    let backlog: InboundBacklog?
    let logger: Logger
    /// Told of a frame that did not decode, before the connection is closed.
    let rejected: (SocketAddress?, ReplicationError) -> Void
    /// Told of the connection's hello; returns the hello to answer with when the peer belongs to
    /// another region (the connection is then closed), nil when it is taken.
    let greeted: (ConnectionHello, SocketAddress?) -> ConnectionHello?
    /// This member's region id, nil while it names none: a connection that has said no hello
    /// then carries no frame that leads or campaigns (``RaftFrame/leadsOrCampaigns``), and one
    /// whose hello was taken before this member named its id is held to it. Told of each frame
    /// dropped so.
    let ownRegionID: () -> UInt64?
    let droppedUnvouched: (SocketAddress?, RaftFrame) -> Void
    /// Told of an error under the connection (a reset), before it is closed; logged here without one.
    let failed: ((SocketAddress?, any Error) -> Void)?
    /// The peer's address, kept from the start: a reset connection no longer says it.
    private var peer: SocketAddress?
    /// What the connection said of its region, as far as it matters for its next frame.
    private var standing = Standing.silent

    enum Standing {
        /// No hello yet: what leads or campaigns is dropped once this member names its id.
        case silent
        /// A hello taken while this member named no id: checked again at each frame until it does.
        case unchecked(ConnectionHello)
        /// A hello naming this member's region: nothing more to check.
        case vouched
    }
    private var heardFirstFrame = false
    /// With TLS: told of a frame whose sender is not the member the connection's certificate
    /// speaks for (that member, the sender), before the connection is closed. Nil without TLS.
    var impersonated: ((String?, String) -> Void)?
    /// With TLS: the member the connection's certificate speaks for, once its handshake is done.
    private var certifiedMember: String?
    /// With TLS: the handshake is done and the peer's certificate read.
    private var identified = false
    /// Set once a frame under another member's name closed the connection: later frames already
    /// decoded are dropped.
    private var refused = false
    /// Set once an error closed the connection: later errors are not counted or logged again.
    private var closing = false

    init(
        receive: @escaping RaftTransport.Receiver, connected: RaftTransport.Receiver?,
        backlog: InboundBacklog? = nil, logger: Logger,
        greeted: @escaping (ConnectionHello, SocketAddress?) -> ConnectionHello? = { _, _ in nil },
        ownRegionID: @escaping () -> UInt64? = { nil },
        droppedUnvouched: @escaping (SocketAddress?, RaftFrame) -> Void = { _, _ in },
        failed: ((SocketAddress?, any Error) -> Void)? = nil,
        rejected: @escaping (SocketAddress?, ReplicationError) -> Void
    ) {
        self.failed = failed
        self.receive = receive
        self.connected = connected
        self.backlog = backlog
        self.logger = logger
        self.greeted = greeted
        self.ownRegionID = ownRegionID
        self.droppedUnvouched = droppedUnvouched
        self.rejected = rejected
    }

    func handlerAdded(context: ChannelHandlerContext) { peer = context.channel.remoteAddress }

    func channelInactive(context: ChannelHandlerContext) {
        letGoOfReceivers()
        context.fireChannelInactive()
    }

    /// (Also for a connection closed before it became active, which is never inactive.)
    func handlerRemoved(context: ChannelHandlerContext) { letGoOfReceivers() }

    private func letGoOfReceivers() {
        receive = nil
        connected = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSHandshakeWatcher.PeerIdentified {
            certifiedMember = event.memberID
            identified = true
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !refused else { return }
        if let impersonated, certifiedMember == nil || frame.sender != certifiedMember {
            refused = true
            impersonated(certifiedMember, frame.sender)
            context.close(promise: nil)
            return
        }
        if case .hello(let hello) = frame.content {
            if let answer = greeted(hello, context.remoteAddress) {
                refuse(context, frame.group, answer)
                return
            }
            standing = ownRegionID() == hello.regionID ? .vouched : .unchecked(hello)
        } else {
            switch standing {
            case .vouched:
                break
            case .unchecked(let hello):
                // This member may have named its id since the hello: held to it now.
                if ownRegionID() != nil {
                    if let answer = greeted(hello, context.remoteAddress) {
                        refuse(context, frame.group, answer)
                        return
                    }
                    standing = .vouched
                }
            case .silent:
                if frame.leadsOrCampaigns, ownRegionID() != nil {
                    droppedUnvouched(context.remoteAddress, frame)
                    return
                }
            }
        }
        if !heardFirstFrame {
            heardFirstFrame = true
            connected?(frame)
        }
        if case .hello = frame.content { return }
        receive?(frame)
        if let backlog, case .snapshotChunk = frame.content { backlog.holdIfFull(context.channel) }
    }

    /// Answers a member of another region with this member's hello, then closes the connection;
    /// frames already decoded are dropped.
    private func refuse(_ context: ChannelHandlerContext, _ group: String, _ answer: ConnectionHello) {
        refused = true
        let channel = context.channel
        let bytes = RaftFrame(group: group, hello: answer).encoded()
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: bytes))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Closing already (a TLS close waits for the peer's goodbye): a stall timer due
        // meanwhile is not a second reason.
        if refused || closing { return }
        closing = true
        // A peer that did not prove itself was logged (throttled) by the TLS watcher; a TLS peer
        // that went away without saying goodbye (it crashed, or was killed) is no news either.
        let unproven = impersonated != nil && !identified
        if (unproven && TLSHandshakeWatcher.isHandshakeFailure(error)) || (error as? NIOSSLError) == .uncleanShutdown {
            context.close(promise: nil)
            return
        }
        if let error = error as? ReplicationError {
            // A frame that failed to decode (not a connection reset by a peer going away).
            rejected(context.remoteAddress ?? peer, error)
            if error.code == .httpRequest {
                // An HTTP client is answered in its own terms, then the connection closes.
                let channel = context.channel
                let answer = channel.allocator.buffer(bytes: RaftFrameDecoder.httpAnswer)
                context.writeAndFlush(NIOAny(answer)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
        } else if let failed {
            failed(context.remoteAddress ?? peer, error)
        } else {
            let peer = (context.remoteAddress ?? peer).map { "\($0)" } ?? "a peer"
            logger.warning("closing the replication connection from \(peer): \(error)")
        }
        context.close(promise: nil)
    }
}

/// Closes a connection as soon as it is open: one past ``RaftTransport/maxInboundConnections``.
final class CloseOnActiveHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelActive(context: ChannelHandlerContext) { context.close(promise: nil) }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Reads what arrives on an outgoing connection: the hello a member of another region answers
/// with as it closes the connection goes to `answered`; any other frame is dropped.
final class AnsweredHelloHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = RaftFrame
    let answered: @Sendable (ConnectionHello) -> Void

    init(answered: @escaping @Sendable (ConnectionHello) -> Void) { self.answered = answered }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .hello(let hello) = unwrapInboundIn(data).content { answered(hello) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// The receivers one ``RaftTransport/listen(host:port:backlog:connected:receive:)`` hands frames
/// to, held here rather than by the listener: ``RaftTransport/close()`` empties it. A listener
/// is taken down by NIO a moment after it closes, on an event loop; had it held the receivers (the
/// member), the member, its log and its views would have been let go there, as a member started
/// again in the same process opened them (seen: "disk I/O error" opening the views while the last
/// ones were closing). Each connection's handler takes the receivers once, as it opens, and lets
/// go of them as it closes.
final class ReceiverSlot: Sendable {
    private let held: Mutex<(receive: RaftTransport.Receiver, connected: RaftTransport.Receiver?)?>

    init(receive: @escaping RaftTransport.Receiver, connected: RaftTransport.Receiver?) {
        held = Mutex((receive, connected))
    }

    /// The receivers; nil once the transport has closed.
    var receivers: (receive: RaftTransport.Receiver, connected: RaftTransport.Receiver?)? {
        held.withLock { $0 }
    }

    /// Lets go of the receivers: connections opened from now on are closed at once.
    func empty() {
        held.withLock { $0 = nil }
    }
}
