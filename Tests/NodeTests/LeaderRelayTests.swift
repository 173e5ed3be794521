import AsyncHTTPClient
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
        try await makePeerCertificates(in: dir.file("region"), ["n1": "127.0.0.1", "n2": "127.0.0.1"])
        try await makePeerCertificates(in: dir.file("other"), ["leader": "127.0.0.1"])
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

    @Test(
        "a reload's relay client replaces the one before it, which is shut down once a relay it carried has had its time"
    )
    func reloadReplacesTheRelayClient() async throws {
        let dir = TemporaryDirectory()
        try await makePeerCertificates(in: dir.file("region"), ["n1": "127.0.0.1", "n2": "127.0.0.1"])
        func load(_ node: String) throws -> APITLS {
            try APITLS(
                certificateFile: dir.file("region/\(node).pem"), privateKeyFile: dir.file("region/\(node).key"),
                trustedCAFile: dir.file("region/ca.pem"))
        }
        let start = NIODeadline.now()
        let first = try load("n1")
        let firstClient = LeaderRelay.client(tls: first, now: start)
        #expect(LeaderRelay.client(tls: first, now: start) === firstClient)
        // Another node's files (two nodes in one process, as in tests): a client of their own.
        let other = LeaderRelay.client(tls: try load("n2"), now: start)
        #expect(other !== firstClient)

        let reloaded = try first.reloaded()
        let reloadedClient = LeaderRelay.client(tls: reloaded, now: start)
        #expect(reloadedClient !== firstClient)
        // A relay that began before the reload and asks after it gets the newer client.
        #expect(LeaderRelay.client(tls: first, now: start) === reloadedClient)
        #expect(LeaderRelay.tlsClients.withLock { $0.replaced.contains { $0.client === firstClient } })

        // Before the deadline the replaced client still runs; after it, the next call shuts it down.
        _ = LeaderRelay.client(tls: reloaded, now: start + LeaderRelay.replacedLifetime - .milliseconds(1))
        #expect(LeaderRelay.tlsClients.withLock { $0.replaced.contains { $0.client === firstClient } })
        #expect(LeaderRelay.client(tls: reloaded, now: start + LeaderRelay.replacedLifetime) === reloadedClient)
        #expect(!LeaderRelay.tlsClients.withLock { $0.replaced.contains { $0.client === firstClient } })
        await #expect(throws: HTTPClientError.alreadyShutdown) { try await firstClient.shutdown() }
        try await reloadedClient.shutdown()
        try await other.shutdown()
    }
}
