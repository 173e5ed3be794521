import ArgumentParser
import Node
import Replication

/// `--api-cert-file`, `--api-key-file`, `--api-trusted-ca-file`: HTTPS on the node's API, and
/// with a trusted authority, only clients holding a certificate it signed. Shared by `serve` and `dev`.
struct APITLSOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The API's certificate (PEM): the API speaks HTTPS.",
            discussion:
                "With --api-key-file. Clients then use --server https://HOST:PORT and --ca-file (or DWCP_CA_FILE)."))
    var apiCertFile: String?

    @Option(name: .long, help: "The key of --api-cert-file (PEM).")
    var apiKeyFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only clients with a certificate this authority signed may use the API (PEM).",
            discussion:
                "Clients give theirs with --cert-file and --key-file. Members sending a request on to the leader's API trust this authority and present their API certificate."
        ))
    var apiTrustedCAFile: String?

    func validate() throws {
        guard (apiCertFile == nil) == (apiKeyFile == nil) else {
            throw ValidationError("HTTPS on the API takes both --api-cert-file and --api-key-file")
        }
        guard apiTrustedCAFile == nil || apiCertFile != nil else {
            throw ValidationError("--api-trusted-ca-file needs HTTPS on the API: --api-cert-file and --api-key-file")
        }
    }

    /// The API's TLS, or nil for plain HTTP; a file that cannot be used is a usage error naming it.
    func configuration() throws -> APITLS? {
        guard let apiCertFile, let apiKeyFile else { return nil }
        do {
            return try APITLS(certificateFile: apiCertFile, privateKeyFile: apiKeyFile, trustedCAFile: apiTrustedCAFile)
        } catch let error as ReplicationError {
            throw CLIError(.usage, error.description, cause: error)
        }
    }
}
