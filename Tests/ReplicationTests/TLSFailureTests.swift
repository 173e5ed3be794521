import NIOSSL
import Testing

@testable import Replication

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
