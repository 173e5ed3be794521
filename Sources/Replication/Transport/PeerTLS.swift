import NIOSSL

/// Mutual TLS for the replication port: what a member presents (its certificate and key) and
/// whom it trusts (the region's certificate authority). Both ends of every connection prove
/// themselves: the member that dials checks that the peer's certificate chains to the authority
/// and names the address it dialled; the member that accepts checks that the dialler's chains to
/// the authority (a dialler's source address says nothing, so no name is checked there). So a
/// process without a certificate of the region's authority can neither send a member a frame nor
/// pose as a member to one. TLS 1.3 only.
///
/// A certificate speaks for one member: its Common Name is that member's id. Frames that come in
/// over a connection name their sender, and a frame whose sender is not the id its connection's
/// certificate names closes that connection, so one member's certificate cannot vote, append or
/// answer as another member.
///
/// Every member of a region must use it, or none: a member without it cannot talk to one with it.
/// The files are read at start, and again by ``reloaded()`` (`dwcp serve` on SIGHUP).
public struct PeerTLS: Sendable {
    /// Wraps the connections peers open to this member.
    let serverContext: NIOSSLContext
    /// Wraps the connections this member opens to its peers.
    let clientContext: NIOSSLContext
    /// The member id this member's own certificate names (its Common Name), if it names one.
    public let memberID: String?
    /// The files it was read from, to read again (``reloaded()``).
    public let certificateFile: String
    public let privateKeyFile: String
    public let trustedCAFile: String

    /// Reads the PEM files: `certificateFile` (this member's certificate, then any intermediates),
    /// `privateKeyFile` (its key) and `trustedCAFile` (the authorities a peer's certificate must
    /// chain to). Throws a ``ReplicationError`` naming the file that cannot be used.
    public init(certificateFile: String, privateKeyFile: String, trustedCAFile: String) throws {
        let chain = try PEMFile.certificates(certificateFile, what: "certificate")
        try PEMFile.requireValid(chain[0], file: certificateFile, what: "member certificate")
        let key = try PEMFile.privateKey(privateKeyFile)
        let authorities = try PEMFile.certificates(trustedCAFile, what: "trusted CA")
        memberID = Self.memberID(of: chain[0])
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.trustedCAFile = trustedCAFile
        var server = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key),
            trustRoots: .certificates(authorities))
        server.minimumTLSVersion = .tlsv13
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = .tlsv13
        client.certificateVerification = .fullVerification
        client.trustRoots = .certificates(authorities)
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        // A closing connection waits this long for the peer's goodbye (close_notify), not NIO's
        // 5 s: a member stopping with a partitioned peer would otherwise wait that out.
        server.shutdownTimeout = .milliseconds(500)
        client.shutdownTimeout = .milliseconds(500)
        serverContext = try PEMFile.context(server, certificateFile: certificateFile, keyFile: privateKeyFile)
        clientContext = try PEMFile.context(client, certificateFile: certificateFile, keyFile: privateKeyFile)
    }

    /// Refuses a certificate that speaks for another member than `nodeID`: peers hold a member's
    /// frames to the id its certificate names (at start, and on a reload).
    public func requireSpeaks(for nodeID: String) throws {
        guard memberID != nodeID else { return }
        let names = memberID.map { "speaks for \($0) (its Common Name)" } ?? "has no Common Name"
        throw ReplicationError(
            .invalidConfiguration,
            "--peer-cert-file \(certificateFile) \(names), not for this node, \(nodeID): a member's certificate names its id (scripts/peer-certs.sh makes them so)"
        )
    }

    /// The same files read again (a certificate renewed in place).
    public func reloaded() throws -> PeerTLS {
        try PeerTLS(certificateFile: certificateFile, privateKeyFile: privateKeyFile, trustedCAFile: trustedCAFile)
    }

    /// The member id a certificate speaks for: its subject's Common Name.
    static func memberID(of certificate: NIOSSLCertificate) -> String? {
        certificate.subjectName.first { $0.type == .commonName }?.value
    }
}
