import HummingbirdCore
import Logging
import NIOCore
import NIOSSL

/// The API's child channel with TLS in front, like HummingbirdTLS's, except that each connection
/// takes the TLS context of the moment: after ``Node/reloadCertificates()`` new connections get
/// the new certificate, and those open keep theirs.
struct ReloadableTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let context: @Sendable () -> NIOSSLContext

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = context()
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 behind TLS whose context `context` gives for each connection.
    static func http1(
        configuration: HTTP1Channel.Configuration, reloadableTLS context: @escaping @Sendable () -> NIOSSLContext
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            ReloadableTLSChannel(
                base: HTTP1Channel(responder: responder, configuration: configuration), context: context)
        }
    }
}
