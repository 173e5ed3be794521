import ArgumentParser
import Foundation
import Node

/// Where the node is: `--server HOST:PORT` (or `http://HOST:PORT`), else `$DWCP_SERVER`, else 127.0.0.1:7070.
struct ClientOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "The node's API as HOST:PORT or http://HOST:PORT (default: $DWCP_SERVER, else 127.0.0.1:7070).")
    var server: String?

    var address: String {
        server ?? ProcessInfo.processInfo.environment["DWCP_SERVER"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "127.0.0.1:7070"
    }

    func client() throws -> NodeClient {
        try NodeClient(address: address)
    }
}

/// Options of commands that write an intent.
struct IntentOptions: ParsableArguments {
    @Option(name: .long, help: "A request id that makes retries idempotent (default: a fresh UUID).")
    var requestID: String?

    @Flag(name: .long, help: "Print the node's JSON answer instead of a sentence.")
    var json = false

    var resolvedRequestID: String { requestID ?? UUID().uuidString.lowercased() }

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

/// Parses where a node's API is: `HOST:PORT`, or `http://HOST:PORT` as in a URL.
func parseServerAddress(_ text: String) throws -> (host: String, port: Int) {
    if text.lowercased().hasPrefix("https://") {
        throw CLIError(
            .usage,
            "invalid server '\(text)': a node's API speaks plain HTTP (no TLS yet); use HOST:PORT, like 127.0.0.1:7070")
    }
    guard text.lowercased().hasPrefix("http://") else { return try parseAddress(text) }
    var rest = text.dropFirst("http://".count)
    if rest.hasSuffix("/") { rest = rest.dropLast() }
    return try parseAddress(String(rest))
}
