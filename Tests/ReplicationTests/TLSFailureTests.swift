import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import Replication

#if canImport(Glibc)
    import Glibc
#endif

/// The words a failed handshake is told in (the replication port's log lines, the CLI's errors).
@Suite struct TLSFailureTests {
    @Test("failures are told in words, and only TLS's own errors count as TLS failures")
    func failuresInWords() {
        #expect(
            TLSFailure.explain(NIOSSLExtraError.failedToValidateHostname)
                == "its certificate does not name the address dialled")
        #expect(
            TLSFailure.explain(TLSFailure.WrongMember(expected: "n1", certified: "n2"))
                == "its certificate speaks for n2, not for n1")
        #expect(
            TLSFailure.explain(TLSFailure.WrongMember(expected: nil, certified: nil))
                == "its certificate names no member (no Common Name)")
        #expect(TLSFailure.isTLSError(NIOSSLError.uncleanShutdown))
        #expect(!TLSFailure.isTLSError(CancellationError()))
        #expect(
            TLSHandshakeWatcher.explain(NIOSSLExtraError.failedToValidateHostname)
                == "TLS handshake failed: its certificate does not name the address dialled")
        let timedOut = TLSHandshakeWatcher.TimedOut(deadline: .seconds(5))
        #expect(
            TLSHandshakeWatcher.explain(timedOut) == "the TLS handshake did not finish within 5000 ms")
    }
}

extension TLSFailureTests {
    @Test("a connection reset before the peer proved itself is told as a reset in the handshake")
    func resetDuringTheHandshake() throws {
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            TLSHandshakeWatcher(side: .dialled(expectedMember: "b"), deadline: .seconds(5)) { result in
                if case .failure(let error) = result { outcome.error = error }
            })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7301)).wait()
        channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read(descriptor:pointer:size:)"))
        let error = try #require(outcome.error)
        #expect(TLSHandshakeWatcher.isHandshakeFailure(error))
        #expect(
            TLSHandshakeWatcher.explain(error)
                == "it reset the connection during the TLS handshake (it runs without TLS, is at its connection limit, or restarted)"
        )
        #expect(throws: TLSHandshakeWatcher.ResetEarly.self) { try channel.throwIfErrorCaught() }
        _ = try? channel.finish()
    }
}
