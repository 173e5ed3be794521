import NIOCore
import NIOSSL
import NIOTLS

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Stands behind a replication connection's TLS handler and watches it until the peer has proved
/// itself: closes the connection if that has not happened within `deadline`, and tells `finished`
/// once, with the channel when the peer proved itself or with why not. Used on its channel's
/// event loop only.
///
/// On an accepted connection the proof is the handshake (the peer's certificate chains to the
/// authority), after which the watcher sends ``PeerIdentified`` down the pipeline and writes one
/// byte, ``acceptance``, to the peer. On a dialled connection the handshake is not enough: in
/// TLS 1.3 the dialler finishes its handshake before the acceptor has checked the dialler's
/// certificate, and a refusal arrives as an alert after. So the dialler waits for the acceptance
/// byte, and checks that the peer's certificate speaks for `expectedMember`.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Which end of the connection this is.
    enum Side {
        case accepted
        /// `expectedMember`: the member the dialled address belongs to, when known.
        case dialled(expectedMember: String?)
    }

    /// The byte an accepting member writes once the dialler's certificate is taken.
    static let acceptance: UInt8 = 0x06

    /// The handshake did not finish within the deadline.
    struct TimedOut: Error, CustomStringConvertible {
        let deadline: TimeAmount
        var description: String {
            "the TLS handshake did not finish within \(deadline.nanoseconds / 1_000_000) ms"
        }
    }

    /// The connection closed before the peer proved itself, with no error of its own.
    struct ClosedEarly: Error, CustomStringConvertible {
        var description: String { "the connection closed during the TLS handshake" }
    }

    /// The peer reset the connection before it proved itself: what a member without TLS does
    /// over a network, where it closes with the rest of the hello still unread.
    struct ResetEarly: Error, CustomStringConvertible {
        var description: String {
            "it reset the connection during the TLS handshake (it runs without TLS, is at its connection limit, or restarted)"
        }
    }

    /// Sent down the pipeline once an accepted connection's handshake is done: the member id
    /// the peer's certificate names (nil: it names none), for ``InboundFrameHandler`` to hold
    /// the connection's frames to.
    struct PeerIdentified {
        let memberID: String?
    }

    let side: Side
    let deadline: TimeAmount
    /// Told once how the watch ended: the channel, once the peer proved itself, or why not.
    let finished: (Result<any Channel, any Error>) -> Void
    private var timer: Scheduled<Void>?
    private var isFinished = false
    /// Whether the peer's handshake is done and its certificate taken (the watch may still wait).
    private var handshakeDone = false

    init(side: Side, deadline: TimeAmount, finished: @escaping (Result<any Channel, any Error>) -> Void) {
        self.side = side
        self.deadline = deadline
        self.finished = finished
    }

    /// Whether `error` is what a connection that did not prove itself raises.
    static func isHandshakeFailure(_ error: any Error) -> Bool {
        error is TimedOut || error is ClosedEarly || error is ResetEarly || TLSFailure.isTLSError(error)
    }

    /// A failure in words (``TLSFailure/explain(_:)``), or the error as it describes itself.
    static func explain(_ error: any Error) -> String {
        guard isHandshakeFailure(error) else { return "\(error)" }
        if error is TimedOut || error is ClosedEarly || error is ResetEarly { return "\(error)" }
        return "TLS handshake failed: " + TLSFailure.explain(error)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil, !isFinished else { return }
        let channel = context.channel
        let deadline = deadline
        timer = context.eventLoop.scheduleTask(in: deadline) {
            // Through the pipeline, so this watcher and the handlers behind it (which log and close) see it.
            channel.pipeline.fireErrorCaught(TimedOut(deadline: deadline))
            channel.close(promise: nil)
        }
    }

    /// Ends the watch. Only once the connection was open (armed): a connection that never opened
    /// had no handshake, and its opener is told by the failed connect.
    private func finish(_ outcome: Result<any Channel, any Error>) {
        guard !isFinished, timer != nil else { return }
        isFinished = true
        timer?.cancel()
        timer = nil
        finished(outcome)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        handshakeDone = true
        context.fireUserInboundEventTriggered(event)
        let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
        let memberID = certificate.map(PeerTLS.memberID(of:)) ?? nil
        switch side {
        case .accepted:
            guard memberID != nil else {
                refuse(context, TLSFailure.WrongMember(expected: nil, certified: nil))
                return
            }
            finish(.success(context.channel))
            context.fireUserInboundEventTriggered(PeerIdentified(memberID: memberID))
            var byte = context.channel.allocator.buffer(capacity: 1)
            byte.writeInteger(Self.acceptance)
            context.writeAndFlush(NIOAny(byte), promise: nil)
        case .dialled(let expected):
            if let expected, memberID != expected {
                refuse(context, TLSFailure.WrongMember(expected: expected, certified: memberID))
            }
        }
    }

    /// Ends the watch with `error` (before anything read after the handshake could end it
    /// otherwise), tells the handlers behind, and closes the connection.
    private func refuse(_ context: ChannelHandlerContext, _ error: any Error) {
        finish(.failure(error))
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .dialled = side, handshakeDone, !isFinished {
            // The acceptor took this member's certificate (nothing else is ever sent this way).
            finish(.success(context.channel))
            return
        }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let reset = !isFinished && !handshakeDone && (error as? IOError)?.errnoCode == ECONNRESET
        let error = reset ? ResetEarly() : error
        finish(.failure(error))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(ClosedEarly()))
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.failure(ClosedEarly()))
    }
}
