import NIOSSL

/// Why a TLS connection failed, in words an operator can act on, for the replication port's log
/// lines and the CLI's errors alike.
public enum TLSFailure {
    /// The peer's certificate speaks for another member than the one dialled.
    /// (`expected` nil: any member would do, and the certificate names none.)
    public struct WrongMember: Error, CustomStringConvertible {
        public let expected: String?
        public let certified: String?
        public var description: String {
            let speaks = certified.map { "speaks for \($0)" } ?? "names no member (no Common Name)"
            return "its certificate \(speaks)" + (expected.map { ", not for \($0)" } ?? "")
        }
    }

    /// Whether `error` is one TLS raises (a failed handshake, a refused certificate, an alert).
    public static func isTLSError(_ error: any Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError || error is WrongMember
    }

    /// `error` in words ("it" is the other side of the connection).
    public static func explain(_ error: any Error) -> String {
        if let error = error as? WrongMember { return error.description }
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "its certificate does not name the address dialled"
        }
        let text = "\(error)"
        let reasons: [(String, String)] = [
            (
                "CERTIFICATE_VERIFY_FAILED",
                "its certificate did not verify against the authority this side trusts (another authority's, expired or not yet valid, or not for this use)"
            ),
            ("UNKNOWN_CA", "it does not trust this side's certificate (signed by another authority)"),
            ("BAD_CERTIFICATE", "it refused this side's certificate"),
            // (TLS has no alert for a certificate not yet valid: BoringSSL sends this one for both.)
            ("CERTIFICATE_EXPIRED", "a certificate has expired, or is not yet valid"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "it presented no certificate"),
            ("CERTIFICATE_REQUIRED", "it asks for a certificate this side did not present"),
            ("WRONG_VERSION_NUMBER", "it does not speak TLS (started without TLS?)"),
            ("HTTP_REQUEST", "it sent plain text, not TLS (started without TLS?)"),
            ("PROTOCOL_VERSION", "it does not speak a TLS version this side accepts"),
            (
                "EOF during handshake",
                "it closed the connection during the handshake (it runs without TLS, is at its connection limit, or restarted)"
            ),
        ]
        guard let reason = reasons.first(where: { text.contains($0.0) })?.1 else { return text }
        return reason
    }
}
