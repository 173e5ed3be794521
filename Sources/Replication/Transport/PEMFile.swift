import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads the PEM files TLS is configured with (the replication port's, the API's), with errors
/// that name the file and what is wrong with it: missing or unreadable, or not what it should hold.
public enum PEMFile {
    /// The certificates in `file` (at least one); `what` names the file in errors ("certificate").
    public static func certificates(_ file: String, what: String) throws -> [NIOSSLCertificate] {
        try checkReadable(file, what: what)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(file)
        } catch {
            throw ReplicationError(
                .invalidConfiguration, "the \(what) file \(file) does not hold PEM certificates", cause: error)
        }
        guard !certificates.isEmpty else {
            throw ReplicationError(.invalidConfiguration, "the \(what) file \(file) holds no PEM certificate")
        }
        return certificates
    }

    /// Refuses `certificate` (this side's own, the first in `file`) outside its validity dates at
    /// `now` (seconds since 1970): peers would refuse every handshake with it, while this side
    /// seemed to start, or reload, without a word.
    public static func requireValid(
        _ certificate: NIOSSLCertificate, file: String, what: String, now: time_t = time(nil)
    ) throws {
        let (from, until) = (certificate.notValidBefore, certificate.notValidAfter)
        if now < from {
            throw ReplicationError(
                .invalidConfiguration,
                "the \(what) in \(file) is not valid before \(utc(from)) (it is \(utc(now))): check the clock, or the certificate's dates"
            )
        }
        if now > until {
            throw ReplicationError(
                .invalidConfiguration, "the \(what) in \(file) expired at \(utc(until)) (it is \(utc(now))): renew it")
        }
    }

    /// `2026-12-05 22:53:00 UTC`.
    static func utc(_ seconds: time_t) -> String {
        var time = seconds
        var parts = tm()
        gmtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The private key in `file`.
    public static func privateKey(_ file: String) throws -> NIOSSLPrivateKey {
        try checkReadable(file, what: "private key")
        do {
            return try NIOSSLPrivateKey(file: file, format: .pem)
        } catch {
            throw ReplicationError(
                .invalidConfiguration, "the private key file \(file) holds no PEM private key", cause: error)
        }
    }

    /// The context for `configuration`, refused when it cannot be used (a key that is not its
    /// certificate's cannot).
    public static func context(_ configuration: TLSConfiguration, certificateFile: String, keyFile: String) throws
        -> NIOSSLContext
    {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ReplicationError(
                .invalidConfiguration,
                "cannot use the certificate \(certificateFile) with the key \(keyFile) (is it the key of that certificate?)",
                cause: error)
        }
    }

    /// A missing or unreadable file is told as such, not as a file of the wrong content.
    private static func checkReadable(_ file: String, what: String) throws {
        guard access(file, R_OK) != 0 else { return }
        let reason = String(cString: strerror(errno))
        throw ReplicationError(.invalidConfiguration, "cannot read the \(what) file \(file): \(reason)")
    }
}
