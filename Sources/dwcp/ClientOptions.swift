import ArgumentParser
import Foundation
import NIOSSL
import Node
import Replication
import Synchronization

/// Where the node is: `--server HOST:PORT` (or `http://` or `https://HOST:PORT`), else
/// `$DWCP_SERVER`, else 127.0.0.1:7070; and, for an API with TLS, whom to trust and what to show.
struct ClientOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "The node's API as HOST:PORT, http://HOST:PORT or https://HOST:PORT (default: $DWCP_SERVER, else 127.0.0.1:7070)."
    )
    var server: String?

    @Option(
        name: .long,
        help:
            "HTTPS: the authority that signed the node's API certificate (PEM; default: $DWCP_CA_FILE, else the system's)."
    )
    var caFile: String?

    @Option(
        name: .long,
        help: "HTTPS: this client's certificate, for an API that asks for one (PEM; default: $DWCP_CERT_FILE).")
    var certFile: String?

    @Option(name: .long, help: "The key of --cert-file (PEM; default: $DWCP_KEY_FILE).")
    var keyFile: String?

    var address: String { server ?? Self.environment("DWCP_SERVER") ?? "127.0.0.1:7070" }

    static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    func client() throws -> NodeClient {
        let tls = try tls()
        do {
            return try NodeClient(address: address, tls: tls)
        } catch let error as CLIError
            where error.code == .usage && server == nil && Self.environment("DWCP_SERVER") != nil
        {
            // The address came from the environment: say where, or the user looks at the command line.
            throw CLIError(.usage, "DWCP_SERVER: \(error.message)")
        }
    }

    /// The TLS the options ask for (any of the files, from a flag or the environment), or nil.
    func tls() throws -> ClientTLS? {
        let ca = caFile ?? Self.environment("DWCP_CA_FILE")
        let certificate = certFile ?? Self.environment("DWCP_CERT_FILE")
        let key = keyFile ?? Self.environment("DWCP_KEY_FILE")
        guard ca != nil || certificate != nil || key != nil else { return nil }
        return try ClientTLS(caFile: ca, certificateFile: certificate, keyFile: key)
    }
}

/// The CLI's TLS towards a node's API: the authority it trusts (the system's without one) and,
/// for an API that asks for one, its own certificate and key.
struct ClientTLS: Sendable {
    let configuration: TLSConfiguration
    /// The files, as one key (one HTTP client per set of files).
    let files: String

    init(caFile: String?, certificateFile: String?, keyFile: String?) throws {
        guard (certificateFile == nil) == (keyFile == nil) else {
            throw CLIError(.usage, "a client certificate takes both --cert-file and --key-file")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        do {
            if let caFile { configuration.trustRoots = .certificates(try PEMFile.certificates(caFile, what: "CA")) }
            if let certificateFile, let keyFile {
                let chain = try PEMFile.certificates(certificateFile, what: "certificate")
                configuration.certificateChain = chain.map { .certificate($0) }
                configuration.privateKey = .privateKey(try PEMFile.privateKey(keyFile))
                _ = try PEMFile.context(configuration, certificateFile: certificateFile, keyFile: keyFile)
            }
        } catch let error as ReplicationError {
            throw CLIError(.usage, error.description, cause: error)
        }
        self.configuration = configuration
        files = [caFile ?? "", certificateFile ?? "", keyFile ?? ""].joined(separator: "\n")
    }

    /// HTTPS with the system's authorities and no client certificate: `https://` alone.
    static let systemDefault = try! ClientTLS(caFile: nil, certificateFile: nil, keyFile: nil)
}

/// Options of commands that write an intent.
struct IntentOptions: ParsableArguments {
    @Option(name: .long, help: "A request id that makes retries idempotent (default: a fresh UUID).")
    var requestID: String?

    @OptionGroup var output: JSONOutputOption

    /// `--json`: the node's answer instead of a sentence.
    var json: Bool { output.json }

    /// A request id the node would refuse is a usage error here.
    func validate() throws {
        guard let requestID else { return }
        do {
            try Validation.requestID(requestID)
        } catch let error as NodeError {
            throw ValidationError("--request-id: \(error.message)")
        }
    }

    /// `--request-id`, else the id this process made up (one per process: a command that sends
    /// an intent again sends the same id).
    var resolvedRequestID: String {
        guard let requestID else {
            Self.madeUpIDUsed.store(true, ordering: .relaxed)
            return Self.madeUpID
        }
        return requestID
    }

    /// The request id made up for a command run without `--request-id`.
    static let madeUpID = UUID().uuidString.lowercased()
    /// Whether an intent went out under ``madeUpID``: a refusal that says to retry with the same
    /// request id then names it, since the user never saw it.
    static let madeUpIDUsed = Atomic<Bool>(false)

    /// `request_id=ID` for a URL's query, the id percent-encoded (an id may hold `&`, `#` or a
    /// space, which would otherwise cut it short or break the URL).
    var requestIDQuery: String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#")
        return "request_id=" + (resolvedRequestID.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
    }
}

/// Parses `HOST:PORT` (``Validation/hostAndPort(_:)``), as a usage error when it is not one.
func parseAddress(_ text: String) throws -> (host: String, port: Int) {
    guard let address = Validation.hostAndPort(text) else {
        throw CLIError(.usage, "invalid address '\(text)': use HOST:PORT, like 127.0.0.1:7070")
    }
    return address
}

/// Parses where a node's API is: `HOST:PORT`, or `http://HOST:PORT` or `https://HOST:PORT` as
/// in a URL (a closing `/` is let pass, as in a URL); `scheme` is nil when the text names none.
func parseServerAddress(_ text: String) throws -> (scheme: String?, host: String, port: Int) {
    var scheme: String?
    var rest = Substring(text)
    for known in ["http", "https"] where text.lowercased().hasPrefix(known + "://") {
        scheme = known
        rest = rest.dropFirst(known.count + 3)
    }
    if rest.hasSuffix("/") { rest = rest.dropLast() }
    guard let (host, port) = Validation.hostAndPort(String(rest)) else {
        throw CLIError(
            .usage,
            "invalid address '\(text)': use HOST:PORT, http://HOST:PORT or https://HOST:PORT, like 127.0.0.1:7070")
    }
    return (scheme, host, port)
}

/// `--json`: print the node's answer as JSON instead of sentences or a table (intents take it
/// through ``IntentOptions``).
struct JSONOutputOption: ParsableArguments {
    @Flag(name: .long, help: "Print the node's answer as JSON.")
    var json = false
}
