import NIOSSL
import Replication

/// TLS on the node's HTTP API (`--api-cert-file`, `--api-key-file`, and optionally
/// `--api-trusted-ca-file`): the API speaks HTTPS (TLS 1.2 or 1.3) with this node's certificate.
/// With a trusted authority, a client must also present a certificate that authority signed
/// (mutual TLS: the authority is who may use the API), and a member sending a request on to its
/// leader's API (``LeaderRelay``) trusts that authority for the leader's certificate and presents
/// its own API certificate as its client certificate. Without one, any client may connect, and
/// relays trust the system's authorities. Every member of a region runs its API with TLS, or none.
public struct APITLS: Sendable {
    /// The server side, for the API's listener: made once for every connection until a reload.
    let serverContext: NIOSSLContext
    /// The client side of a relay to another member's API.
    let relay: TLSConfiguration
    /// Whether clients must present a certificate of the trusted authority.
    public let verifiesClients: Bool
    /// The same for every load of one node's files (its first load and each reload), and which
    /// load this is (0 for the first): relays share an HTTP client until a reload, whose client
    /// replaces it (``LeaderRelay/client(tls:now:)``).
    let lineage: String
    let generation: Int
    /// The files it was read from, to read again (``reloaded()``).
    public let certificateFile: String
    public let privateKeyFile: String
    public let trustedCAFile: String?

    /// Reads the PEM files; throws a ``ReplicationError`` naming a file that cannot be used.
    public init(certificateFile: String, privateKeyFile: String, trustedCAFile: String?) throws {
        try self.init(
            certificateFile: certificateFile, privateKeyFile: privateKeyFile, trustedCAFile: trustedCAFile,
            lineage: "\(UInt64.random(in: 0...UInt64.max))", generation: 0)
    }

    private init(
        certificateFile: String, privateKeyFile: String, trustedCAFile: String?, lineage: String, generation: Int
    ) throws {
        let chain = try PEMFile.certificates(certificateFile, what: "API certificate")
        try PEMFile.requireValid(chain[0], file: certificateFile, what: "API certificate")
        let key = try PEMFile.privateKey(privateKeyFile)
        let authorities = try trustedCAFile.map { try PEMFile.certificates($0, what: "API trusted CA") }
        var server = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        server.minimumTLSVersion = .tlsv12
        var relay = TLSConfiguration.makeClientConfiguration()
        relay.minimumTLSVersion = .tlsv12
        if let authorities {
            server.certificateVerification = .noHostnameVerification
            server.trustRoots = .certificates(authorities)
            relay.trustRoots = .certificates(authorities)
            relay.certificateChain = chain.map { .certificate($0) }
            relay.privateKey = .privateKey(key)
        }
        // A closing connection waits this long for the client's goodbye (close_notify), not NIO's
        // 5 s: a node stopping with clients' idle connections open would wait that out.
        server.shutdownTimeout = .milliseconds(500)
        relay.shutdownTimeout = .milliseconds(500)
        serverContext = try PEMFile.context(server, certificateFile: certificateFile, keyFile: privateKeyFile)
        self.relay = relay
        verifiesClients = authorities != nil
        self.lineage = lineage
        self.generation = generation
        self.certificateFile = certificateFile
        self.privateKeyFile = privateKeyFile
        self.trustedCAFile = trustedCAFile
    }

    /// The same files read again (a certificate renewed in place).
    public func reloaded() throws -> APITLS {
        try APITLS(
            certificateFile: certificateFile, privateKeyFile: privateKeyFile, trustedCAFile: trustedCAFile,
            lineage: lineage, generation: generation + 1)
    }
}
