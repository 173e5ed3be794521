import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Replication
import Store
import Synchronization

/// The CLI's client of a node's HTTP/JSON API. Turns transport failures and error answers into
/// one-line ``CLIError``s. Requests that carry a request id are retried on connection failures,
/// and while the node answers 503 (the region is electing a leader, or leadership moved before
/// it answered), which is safe because the node applies a request id once.
struct NodeClient {
    let address: String
    let host: String
    let port: Int
    let baseURL: String
    /// HTTPS with these settings, or nil for plain HTTP.
    let tls: ClientTLS?
    /// Whether a node that cannot be reached is reported with advice on starting one or pointing
    /// `--server` elsewhere (not for a member the CLI found in a membership itself).
    var advisesWhenUnreachable = true

    /// HTTP clients for the process (plain, and one per set of TLS files), with a short connect
    /// timeout so an unreachable node is reported quickly. They live until the process exits.
    /// A refused connection or handshake fails the attempt at once (AsyncHTTPClient would try
    /// again for the whole connect timeout); ``call(_:_:body:retrying:)`` retries a connection
    /// refused, never a handshake (``speaksAnotherProtocol(_:)``).
    static let clients = Mutex<[String: HTTPClient]>([:])

    var http: HTTPClient {
        Self.clients.withLock { clients in
            let key = tls?.files ?? "plain"
            if let client = clients[key] { return client }
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls?.configuration)
            configuration.timeout.connect = .seconds(5)
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }

    /// `address` as `--server` takes it; HTTPS when it says `https://` or `tls` is given.
    init(address: String, tls: ClientTLS? = nil) throws {
        let (scheme, host, port) = try parseServerAddress(address)
        if scheme == "http", tls != nil {
            throw CLIError(
                .usage,
                "--server \(address) says http://, but --ca-file, --cert-file or --key-file (or DWCP_CA_FILE, DWCP_CERT_FILE, DWCP_KEY_FILE) ask for HTTPS"
            )
        }
        self.address = address
        self.host = host
        self.port = port
        self.tls = tls ?? (scheme == "https" ? .systemDefault : nil)
        baseURL = "\(self.tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host):\(port)"
    }

    /// How long after its start a retrying request is sent again when the node answers 503: a leader's
    /// hand-off takes tens of milliseconds, an election after a crash about half a second.
    static let defaultUnavailableRetryWindow = Duration.seconds(3)

    /// ``defaultUnavailableRetryWindow`` unless set (a test on a loaded machine, whose first answer
    /// may itself take seconds, sets a longer one).
    var unavailableRetryWindow = Self.defaultUnavailableRetryWindow

    /// How long a retrying request goes on trying a node it cannot reach: long enough for a
    /// node started just before (`dwcp dev &` then a command) to open its port, short enough that
    /// a node that is down is reported in about 1.5 s (pauses of 100, 200, 400 and 800 ms).
    static let unreachableRetryWindow = Duration.seconds(2)

    /// Sends a request and returns the JSON answer; an error answer becomes a ``CLIError``. With
    /// `retrying` (for a request safe to send again: it carries a request id, or only reads), a
    /// connection failure is retried within ``unreachableRetryWindow``, and a 503 for up to
    /// ``unavailableRetryWindow``.
    /// `timeout`: how long one attempt waits for the answer (``answerTimeoutSeconds`` without).
    func call(
        _ method: HTTPMethod, _ path: String, body: JSONValue? = nil, retrying: Bool = false, timeout: Duration? = nil
    ) async throws -> JSONValue {
        var attempt = 0
        var unavailableAttempt = 0
        let start = ContinuousClock.now
        // A 503 that says the intent may or may not apply (a leader took it into its log, then lost
        // its leadership): what the user needs to know, kept over what later tries say (that no
        // leader took it in time, which is not so).
        var undecided: CLIError?
        while true {
            do {
                return try await callOnce(method, path, body: body, timeout: timeout)
            } catch let error as CLIError where error.code == .unreachable && retrying {
                // A node that answers in another protocol will not start speaking HTTP: not asked
                // again. Once the node said the intent may or may not apply, that is still what the
                // user needs to know, whatever stops the retries.
                guard !(error.cause.map(speaksAnotherProtocol) ?? false) else { throw undecided ?? error }
                // 100 ms, doubling, while the window lasts.
                let pause = Duration.milliseconds(100) * (1 << attempt)
                guard start.duration(to: .now) + pause <= Self.unreachableRetryWindow else { throw undecided ?? error }
                attempt += 1
                try await Task.sleep(for: pause)
            } catch let error as CLIError where error.httpStatus == 410 && undecided != nil {
                // The member was removed since it said the intent may or may not apply: that is
                // still what the user needs to know (it says to retry at another member).
                throw undecided ?? error
            } catch let error as CLIError where error.httpStatus == 503 && error.leaderAPI == nil && retrying {
                if undecided == nil, error.message.contains("may or may not") { undecided = error }
                // (A member that names the leader to ask will not lead any sooner: not retried.)
                // The window counts from the request's start: an answer that itself took the
                // window (a member whose views cannot catch up says so after 5 s) is not asked again.
                guard start.duration(to: .now) < unavailableRetryWindow else { throw undecided ?? error }
                // 50 ms, doubling to 400 ms.
                try await Task.sleep(for: .milliseconds(50) * (1 << min(unavailableAttempt, 3)))
                unavailableAttempt += 1
            }
        }
    }

    private func callOnce(_ method: HTTPMethod, _ path: String, body: JSONValue?, timeout: Duration?) async throws
        -> JSONValue
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.serialized()))
        }
        let response: HTTPClientResponse
        let waited = timeout ?? (method == .GET ? readAnswerTimeout : .seconds(Self.answerTimeoutSeconds))
        // Only an intent that carries a request id can be retried as one.
        let intent = path.contains("request_id=") || body?["request_id"] != nil
        do {
            response = try await http.execute(request, timeout: TimeAmount(waited))
        } catch {
            throw unreachable(
                error, intent: intent,
                change: Self.asksForAChange(method, path),
                waited: waited)
        }
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: 256 << 20)
        } catch {
            // The answer's head came, its body broke off (the node stopped while writing a long one).
            throw CLIError(
                .unreachable,
                "the node at \(address) closed the connection in the middle of its answer (HTTP \(response.status.code)): it stopped (see dwcp status)"
                    + (intent
                        ? "; the intent may have applied: retry it with the same request id"
                        : Self.asksForAChange(method, path)
                            ? "; the change may or may not have been made: look before sending it again" : ""),
                cause: error)
        }
        let value: JSONValue
        do {
            value = try bytes.withUnsafeReadableBytes { try JSONValue.parse(bytes: $0) }
        } catch {
            throw CLIError(
                .protocolError,
                "the node at \(address) answered HTTP \(response.status.code) with no JSON we can read (\(error))",
                cause: error)
        }
        if response.status.code >= 400 {
            throw CLIError(
                .refused, Self.errorMessage(value) ?? "the node answered HTTP \(response.status.code)",
                httpStatus: response.status.code, leaderAPI: Self.errorField("leader_api", value))
        }
        return value
    }

    /// Like ``call(_:_:body:retrying:)``, for what only the leader does (leader reads; membership
    /// changes and transfers, which a member sends on to the leader itself unless it cannot reach
    /// it or is older than that): a refusal that names the leader's API address gets the request
    /// sent there, with a note on stderr. With `retrying`, a leader so named that cannot be
    /// reached (refused, or no answer to connect: it crashed, and the member has not noticed yet)
    /// sends the request back to the member, for up to ``leaderGoneRetryWindow`` after the first
    /// such failure, with pauses; the member names the next leader once the region elected one.
    /// A leader that answers in another protocol, or fails TLS, is reported at once.
    func callLeader(_ method: HTTPMethod, _ path: String, body: JSONValue? = nil, retrying: Bool = false) async throws
        -> JSONValue
    {
        var firstFailure: ContinuousClock.Instant?
        var rounds = 0
        while true {
            let refusal: CLIError
            do {
                return try await call(method, path, body: body, retrying: retrying)
            } catch let error as CLIError where isElsewhere(error.leaderAPI) {
                refusal = error
            }
            // An address that does not parse leaves the node's own refusal to report.
            guard let leaderAPI = refusal.leaderAPI, let leader = try? NodeClient(address: leaderAPI, tls: tls) else {
                throw refusal
            }
            StandardStream.error.write("dwcp: \(refusal.message); asking it there\n")
            do {
                // (A leader that takes the connection but does not answer, stopped or frozen, is
                // left after ``leaderAnswerTimeout`` when the request may be sent again: the
                // member knows the next leader by then. A change waits as long as any.)
                return try await leader.call(
                    method, path, body: body, retrying: retrying, timeout: retrying ? leaderAnswerTimeout : nil)
            } catch let failure as CLIError
                where failure.code == .unreachable && retrying
                && !(failure.cause.map(leader.speaksAnotherProtocol) ?? false)
            {
                let since = firstFailure ?? .now
                firstFailure = since
                guard since.duration(to: .now) < Self.leaderGoneRetryWindow else { throw failure }
                StandardStream.error.write(
                    "dwcp: the leader's API at \(leaderAPI) does not answer; asking \(address) again\n")
                // 100 ms, doubling to 800 ms.
                try await Task.sleep(for: .milliseconds(100) * (1 << min(rounds, 3)))
                rounds += 1
            }
        }
    }

    /// How long a request that may be sent again (a read) waits for the answer of the leader a
    /// member named: a leader answers a read within about 10 s (5 s to catch up, 5 s of query) or
    /// says why not. One that took the connection and says nothing (stopped, frozen) used to hold
    /// the command for the whole ``answerTimeoutSeconds``.
    var leaderAnswerTimeout = Duration.seconds(15)

    /// How long after the leader a member named first could not be reached a retrying request for
    /// the leader goes on asking the member: a member notices a crashed leader within an election
    /// timeout (about 1 s) and knows the next one a few round trips later.
    static let leaderGoneRetryWindow = Duration.seconds(5)

    /// Whether `leaderAPI` (HOST:PORT, as a refusal names it) is another node than this one.
    private func isElsewhere(_ leaderAPI: String?) -> Bool {
        guard let leaderAPI, let (_, host, port) = try? parseServerAddress(leaderAPI) else { return false }
        return host != self.host || port != self.port
    }

    /// Streams a newline-delimited JSON answer, calling `line` for each line.
    func stream(_ path: String, line: (String) throws -> Void) async throws {
        let request = HTTPClientRequest(url: baseURL + path)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(Self.answerTimeoutSeconds))
        } catch {
            throw unreachable(error, intent: false)
        }
        if response.status.code >= 400 {
            let bytes = try await response.body.collect(upTo: 1 << 20)
            let value = try? JSONValue.parse(String(buffer: bytes))
            throw CLIError(
                .refused, value.flatMap(Self.errorMessage) ?? "the node answered HTTP \(response.status.code)",
                httpStatus: response.status.code)
        }
        var pending = ""
        do {
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let newline = pending.firstIndex(of: "\n") {
                    let text = String(pending[..<newline])
                    pending = String(pending[pending.index(after: newline)...])
                    if text.hasPrefix("{\"error\":"), let value = try? JSONValue.parse(text),
                        let message = Self.errorMessage(value)
                    {
                        throw CLIError(.refused, message)
                    }
                    try line(text)
                }
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(.unreachable, "the watch stream from \(address) broke off", cause: error)
        }
    }

    /// Streams a plain-text answer (a VM console), calling `chunk` with the bytes as they arrive.
    func streamBytes(_ path: String, timeout: TimeAmount = .hours(24), chunk: (ByteBuffer) throws -> Void) async throws
    {
        let request = HTTPClientRequest(url: baseURL + path)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw unreachable(error, intent: false)
        }
        if response.status.code >= 400 {
            let bytes = try await response.body.collect(upTo: 1 << 20)
            let value = try? JSONValue.parse(String(buffer: bytes))
            throw CLIError(
                .refused, value.flatMap(Self.errorMessage) ?? "the node answered HTTP \(response.status.code)")
        }
        do {
            for try await buffer in response.body { try chunk(buffer) }
        } catch {
            throw CLIError(
                .unreachable,
                "the stream from \(address) broke off before its end: the node stopped or the connection was lost (see dwcp status)",
                cause: error)
        }
    }

    /// Whether a request asks for a change: not a GET, nor one of the reads sent as POST (a query,
    /// a plan), which are safe to send again.
    static func asksForAChange(_ method: HTTPMethod, _ path: String) -> Bool {
        method != .GET && !path.hasPrefix("/v1/sql") && !path.hasPrefix("/v1/plan/")
    }

    /// Whether `error` says the node speaks otherwise than this client (TLS on one side only):
    /// asking again gets the same answer, so it is not retried.
    func speaksAnotherProtocol(_ error: any Error) -> Bool {
        TLSFailure.isTLSError(error)
            || (tls == nil && ((error as? HTTPClientError) == .remoteConnectionClosed || error is HTTPParserError))
    }

    /// How long a request waits for the head of the node's answer.
    static let answerTimeoutSeconds: Int64 = 60

    /// How long a GET (a status, a list, an explanation; none changes anything) waits for the
    /// answer: a node answers one within about 10 s (5 s to catch up, 5 s of query; a cluster
    /// status asks the members for 1 s) or says why not. A node that took the connection and says
    /// nothing (stopped, frozen) held `dwcp status` for the whole minute.
    var readAnswerTimeout = Duration.seconds(20)

    /// The error for a request that got no answer; `intent`: it was an intent with a request id,
    /// which may still apply when the node took it before it went away.
    /// `intent`: the request carries a request id (it may be retried with it); `change`: it asks
    /// for a change (one without a request id may or may not have been made).
    private func unreachable(
        _ error: any Error, intent: Bool, change: Bool = false,
        waited: Duration = .seconds(NodeClient.answerTimeoutSeconds)
    ) -> CLIError {
        if TLSFailure.isTLSError(error) {
            let hint =
                tls == nil
                ? "(is it an HTTPS API? use --server https://HOST:PORT and --ca-file)"
                : "(see --ca-file, and --cert-file and --key-file for an API that asks for a client certificate)"
            let reason = TLSFailure.explain(error)
            return CLIError(.unreachable, "TLS with the node at \(address) failed: \(reason) \(hint)", cause: error)
        }
        // A TLS server closes on plain text (GET, POST, PUT), or answers it with an alert the HTTP
        // parser cannot read (DELETE).
        if speaksAnotherProtocol(error) {
            return CLIError(
                .unreachable,
                "the node at \(address) closed the connection without answering: it stopped (see dwcp status), or its API speaks HTTPS (then use --server https://HOST:PORT and --ca-file)"
                    + (intent
                        ? "; if it stopped, an intent it took may still apply: retry it with the same request id" : ""),
                cause: error)
        }
        // Over TLS, an answer that is no HTTP: the peer speaks TLS but not HTTP, as a region's
        // replication port with TLS does.
        if error is HTTPParserError {
            return CLIError(
                .unreachable,
                "the node at \(address) answered, but not in HTTP: is it a replication port (--listen)? The API is the address given to --api",
                cause: error)
        }
        if let error = error as? HTTPClientError, error == .deadlineExceeded {
            return CLIError(
                .unreachable,
                "the node at \(address) took the request but did not answer within \(waited) (see dwcp status)"
                    + (intent
                        ? "; an intent may still apply: retry it with the same request id"
                        : change ? "; the change may or may not have been made" : ""),
                cause: error)
        }
        let detail = "\(error)".contains("refused") ? "connection refused" : "\(error)"
        let advice =
            advisesWhenUnreachable
            ? " (is it running? start one with 'dwcp dev', or point --server / DWCP_SERVER at a member's --api address)"
            : ""
        return CLIError(.unreachable, "cannot reach a node at \(address): \(detail)\(advice)", cause: error)
    }

    static func errorMessage(_ value: JSONValue) -> String? { errorField("message", value) }

    /// A string field of an error answer (`{"error": {"code", "message", …}}`).
    static func errorField(_ name: String, _ value: JSONValue) -> String? {
        guard case .object(let members) = value, let error = members.first(where: { $0.0 == "error" })?.1,
            case .object(let fields) = error, case .string(let field)? = fields.first(where: { $0.0 == name })?.1
        else { return nil }
        return field
    }
}
