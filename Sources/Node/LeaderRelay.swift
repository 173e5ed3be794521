import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Sends a request only the leader can answer (a membership change, a leadership transfer) on to
/// the leader's API for a member that does not lead, and gives back the leader's answer as it is,
/// so a client may ask any member, as it may write through any member.
///
/// The request carries ``forwardedHeader``: the member it reaches answers it itself. So a request
/// goes one hop at most; one that reaches a member that has stopped leading meanwhile is refused
/// there, naming the next leader (the CLI follows that once).
enum LeaderRelay {
    /// Set on a relayed request, to the id of the member that sent it on.
    static let forwardedHeader = "dwcp-forwarded-by"
    /// Longer than a membership change or a transfer takes to commit (a transfer waits up to 2 s).
    static let timeout = TimeAmount.seconds(10)

    /// Whether `request` came from another member already.
    static func wasRelayed(_ request: Request) -> Bool {
        request.headers.contains { $0.name.canonicalName == forwardedHeader }
    }

    /// The leader's answer to `method path` with `body`; nil when the leader could not be reached
    /// or did not answer whole (the caller answers with its own refusal, which names the leader).
    static func send(
        _ method: HTTPRequest.Method, _ path: String, body: ByteBuffer?, to leaderAPI: String, from nodeID: String,
        logger: Logger
    ) async -> Response? {
        var request = HTTPClientRequest(url: "http://\(leaderAPI)\(path)")
        request.method = HTTPMethod(rawValue: method.rawValue)
        request.headers.add(name: forwardedHeader, value: nodeID)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 1 << 20)
            var headers = HTTPFields()
            headers[.contentType] = response.headers.first(name: "Content-Type") ?? "application/json"
            return Response(
                status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers,
                body: ResponseBody(byteBuffer: bytes))
        } catch {
            logger.warning("could not send \(method) \(path) on to the leader's API at \(leaderAPI): \(error)")
            return nil
        }
    }
}
