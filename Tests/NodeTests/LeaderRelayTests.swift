import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TestSupport
import Testing

@testable import Node

/// How a relay to the leader's API over HTTPS ends when the handshake fails: not sent (so the
/// member answers the refusal naming the leader's API, which the CLI follows), not "may or may
/// not have been made".
@Suite struct LeaderRelayTests {
    @Test("a relay whose TLS handshake fails was not sent")
    func failedHandshakeIsNotSent() async throws {
        let dir = TemporaryDirectory()
        try makePeerCertificates(in: dir.file("region"), ["n1": "127.0.0.1", "n2": "127.0.0.1"])
        try makePeerCertificates(in: dir.file("other"), ["leader": "127.0.0.1"])
        // A "leader" whose API certificate the relaying member's authority did not sign.
        let server = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(dir.file("other/leader.pem")).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: dir.file("other/leader.key"), format: .pem)))
        let context = try NIOSSLContext(configuration: server)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        let tls = try APITLS(
            certificateFile: dir.file("region/n2.pem"), privateKeyFile: dir.file("region/n2.key"),
            trustedCAFile: dir.file("region/ca.pem"))
        let outcome = await LeaderRelay.send(
            .post, "/v1/cluster/members", body: nil, to: "127.0.0.1:\(port)", from: "n2", tls: tls,
            logger: Logger(label: "relay-test"))
        guard case .notSent = outcome else {
            Issue.record("a failed handshake was taken for \(outcome)")
            try await listener.close()
            return
        }
        #expect(
            !LeaderRelay.neverConnected(NIOSSLError.uncleanShutdown), "a connection that broke off may have carried it")
        try await listener.close()
    }
}
