import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Sends a request only the leader can answer (a membership change, a leadership transfer) on to
/// the leader's API for a member that does not lead, and gives back the leader's answer (its
/// status, body and content type), so a client may ask any member, as it may write through any.
///
/// The request carries ``forwardedHeader``: the member it reaches answers it itself, leader or
/// not. So a request goes one hop at most; one that reaches a member that has stopped leading
/// meanwhile is refused there, naming the next leader (the CLI follows that once). The answer
/// carries ``relayedHeader``, naming the member that sent it on.
enum LeaderRelay {
    /// Set on a relayed request, to the id of the member that sent it on.
    static let forwardedHeader = "dwcp-forwarded-by"
    /// Set on the answer to a relayed request, to the id of the member that sent it on.
    static let relayedHeader = HTTPFields.Element.Name("dwcp-relayed-by")!

    /// How a relay ended.
    enum Outcome {
        /// The leader answered; `notLeading`: it refused as a member that does not lead, naming
        /// the leader (it stopped leading meanwhile; one asked to remove itself hands over first).
        case answered(Response, notLeading: Bool)
        /// No connection to the leader could be made: the request was never sent.
        case notSent
        /// The request may have reached the leader, but no whole answer came back (in time).
        case unknown(String)
    }

    /// Its own client: no redirects (the leader's address came from a member over the replication
    /// port; its answer is taken as it is), a short connect timeout (a leader that is gone is
    /// told at once), and a deadline longer than a membership change or a transfer takes (a
    /// transfer waits up to 2 s).
    static let client = makeClient(tls: nil)
    /// With API TLS: the relay client of each node's latest load of its files (one node in a
    /// process, but for tests), and the clients of loads a reload replaced.
    static let tlsClients = Mutex(TLSClients())
    static let deadline = TimeAmount.seconds(10)
    /// How long a replaced relay client is kept: twice a relay's ``deadline``, since a relay that
    /// took the client just before the reload may start its clock a little later, and its answer's
    /// body is bounded by the client's 10 s read timeout after the head, not by the deadline.
    static let replacedLifetime = deadline * 2

    /// The relay clients of API TLS loads.
    struct TLSClients {
        /// By ``APITLS/lineage``: the latest load a client was made for, and the client.
        var latest: [String: (generation: Int, client: HTTPClient)] = [:]
        /// Clients of replaced loads, with when they were replaced: shut down ``replacedLifetime``
        /// after that.
        var replaced: [(client: HTTPClient, at: NIODeadline)] = []
    }

    static func makeClient(tls: TLSConfiguration?) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls,
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .seconds(1), read: .seconds(10)),
            decompression: .disabled)
        // A handshake the leader refuses fails the same way again: told at once, not retried for 1 s.
        if tls != nil { configuration.connectionPool.retryConnectionEstablishment = false }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// The client for relays from a member whose API runs with `tls` (the leader's does too). A
    /// reload of the files (SIGHUP) gets a client of its own, which presents the new certificate;
    /// the one it replaces is shut down by a later call once ``replacedLifetime`` has passed (until
    /// 2026-12-05 every reload left its predecessor's client, with its connections, open for the
    /// life of the process).
    static func client(tls: APITLS?, now: NIODeadline = .now()) -> HTTPClient {
        guard let tls else { return client }
        let (client, ended) = tlsClients.withLock { clients -> (HTTPClient, [HTTPClient]) in
            let ended = clients.replaced.filter { $0.at + replacedLifetime <= now }.map(\.client)
            clients.replaced.removeAll { $0.at + replacedLifetime <= now }
            if let latest = clients.latest[tls.lineage] {
                // (A relay that began before a reload and asks after it gets the newer client.)
                if latest.generation >= tls.generation { return (latest.client, ended) }
                clients.replaced.append((latest.client, now))
            }
            let client = makeClient(tls: tls.relay)
            clients.latest[tls.lineage] = (tls.generation, client)
            return (client, ended)
        }
        for client in ended { client.shutdown { _ in } }
        return client
    }

    /// Whether `request` came from another member already.
    static func wasRelayed(_ request: Request) -> Bool {
        request.headers.contains { $0.name.canonicalName == forwardedHeader }
    }

    /// Sends `method path` with `body` to the leader's API at `leaderAPI`.
    static func send(
        _ method: HTTPRequest.Method, _ path: String, body: ByteBuffer?, to leaderAPI: String, from nodeID: String,
        tls: APITLS?, logger: Logger
    ) async -> Outcome {
        var request = HTTPClientRequest(url: "\(tls == nil ? "http" : "https")://\(leaderAPI)\(path)")
        request.method = HTTPMethod(rawValue: method.rawValue)
        request.headers.add(name: forwardedHeader, value: nodeID)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        do {
            let response = try await client(tls: tls).execute(request, timeout: deadline)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            var headers = HTTPFields()
            headers[.contentType] = response.headers.first(name: "Content-Type") ?? "application/json"
            headers[relayedHeader] = nodeID
            let notLeading =
                response.status.code == 503 && String(buffer: bytes).contains(#""leader_api""#)
            return .answered(
                Response(
                    status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers,
                    body: ResponseBody(byteBuffer: bytes)),
                notLeading: notLeading)
        } catch {
            logger.warning("could not send \(method) \(path) on to the leader's API at \(leaderAPI): \(error)")
            return neverConnected(error) ? .notSent : .unknown("\(error)")
        }
    }

    /// `GET path` from another member's API at `api` (the leader's views check asks each member
    /// for its digest this way): the answer's status and body.
    static func get(_ path: String, at api: String, from nodeID: String, tls: APITLS?) async throws -> (
        status: UInt, body: ByteBuffer
    ) {
        var request = HTTPClientRequest(url: "\(tls == nil ? "http" : "https")://\(api)\(path)")
        request.headers.add(name: forwardedHeader, value: nodeID)
        let response = try await client(tls: tls).execute(request, timeout: deadline)
        return (response.status.code, try await response.body.collect(upTo: 1 << 20))
    }

    /// Whether `error` says no connection was made (so nothing was sent): a refused connection,
    /// or a TLS handshake that failed (a request is sent only after it). A TLS connection that
    /// broke off later (`uncleanShutdown`: a leader that crashed mid-request) may have carried it.
    static func neverConnected(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? NIOSSLError {
            if case .handshakeFailed = error { return true }
            return false
        }
        if error is BoringSSLError || error is NIOSSLExtraError { return true }
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? IOError {
            return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode)
        }
        return false
    }
}
