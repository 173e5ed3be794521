import NIOCore
import NIOSSL
import NIOTLS

/// Stands behind a connection's TLS handler and watches its handshake: closes the connection if
/// the handshake has not finished within `deadline`, and completes `completed` (when given) with
/// the channel once it has, or fails it with why it did not; tells `failed` of a handshake that
/// failed or did not finish. Used on its channel's event loop only.
final class TLSHandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The handshake did not finish within the deadline.
    struct TimedOut: Error, CustomStringConvertible {
        let deadline: TimeAmount
        var description: String {
            "the TLS handshake did not finish within \(deadline.nanoseconds / 1_000_000) ms"
        }
    }

    /// Sent down the pipeline once an accepted connection's handshake is done: the member id
    /// the peer's certificate names (nil: it names none), for ``InboundFrameHandler`` to hold
    /// the connection's frames to.
    struct PeerIdentified {
        let memberID: String?
    }

    /// The connection closed before its handshake finished, with no error of its own.
    struct ClosedEarly: Error, CustomStringConvertible {
        var description: String { "the connection closed during the TLS handshake" }
    }

    let deadline: TimeAmount
    let completed: EventLoopPromise<any Channel>?
    let failed: (any Error) -> Void
    private var timer: Scheduled<Void>?
    private var finished = false

    init(deadline: TimeAmount, completed: EventLoopPromise<any Channel>?, failed: @escaping (any Error) -> Void) {
        self.deadline = deadline
        self.completed = completed
        self.failed = failed
    }

    /// Whether `error` is what a failed or unfinished handshake raises.
    static func isHandshakeFailure(_ error: any Error) -> Bool {
        if error is TimedOut || error is ClosedEarly || error is BoringSSLError { return true }
        if let error = error as? NIOSSLError, case .handshakeFailed = error { return true }
        return false
    }

    /// A failed handshake in words an operator can act on (`dialled`: this member opened the
    /// connection); any other error as it describes itself.
    static func explain(_ error: any Error, dialled: Bool) -> String {
        guard isHandshakeFailure(error) else { return "\(error)" }
        let text = "\(error)"
        let reasons: [(String, String)] = [
            (
                "CERTIFICATE_VERIFY_FAILED",
                dialled
                    ? "its certificate is not signed by the authority of --peer-trusted-ca-file, or does not name the address dialled"
                    : "its certificate is not signed by the authority of --peer-trusted-ca-file"
            ),
            ("UNKNOWN_CA", "it does not trust this member's certificate (signed by another authority)"),
            ("BAD_CERTIFICATE", "it refused this member's certificate"),
            ("CERTIFICATE_EXPIRED", "a certificate has expired"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "it presented no certificate"),
            ("CERTIFICATE_REQUIRED", "it wants a certificate this member did not present"),
            ("WRONG_VERSION_NUMBER", "it does not speak TLS 1.3 (a member started without --peer-cert-file?)"),
            ("HTTP_REQUEST", "it sent plain text, not TLS (a member started without --peer-cert-file?)"),
            ("PROTOCOL_VERSION", "it does not speak TLS 1.3"),
        ]
        let what = reasons.first { text.contains($0.0) }?.1 ?? text
        return "TLS handshake failed: \(what)"
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard timer == nil, !finished else { return }
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
        guard !finished, timer != nil else { return }
        finished = true
        timer?.cancel()
        timer = nil
        if case .failure(let error) = outcome { failed(error) }
        completed?.completeWith(outcome)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        finish(.success(context.channel))
        context.fireUserInboundEventTriggered(event)
        let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
        context.fireUserInboundEventTriggered(PeerIdentified(memberID: certificate.map(PeerTLS.memberID(of:)) ?? nil))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
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
