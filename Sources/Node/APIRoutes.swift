import HTTPTypes
import Hummingbird

/// Adds the API's routes to Hummingbird's router and remembers each one's method and path, so a
/// request on a known path with a method it does not take is answered `405` with the methods it
/// does (``UnknownRouteMiddleware``), where Hummingbird says only that nothing matched.
/// Used while the application is built; ``table`` is what the middleware keeps.
final class APIRoutes {
    let router: Router<BasicRequestContext>
    private(set) var table = RouteTable()

    init(_ router: Router<BasicRequestContext>) { self.router = router }

    typealias Handler<Output: ResponseGenerator> = @Sendable (Request, BasicRequestContext) async throws -> Output

    /// `query`: the query parameters the route reads. Any other is refused (400) before the
    /// handler runs: a misspelt `?request-id=` was dropped without a word, and a retry that
    /// carried it applied twice.
    func get(_ path: String, query: Set<String> = [], use handler: @escaping Handler<some ResponseGenerator>) {
        add(.get, path, query, handler)
    }

    func post(_ path: String, query: Set<String> = [], use handler: @escaping Handler<some ResponseGenerator>) {
        add(.post, path, query, handler)
    }

    func put(_ path: String, query: Set<String> = [], use handler: @escaping Handler<some ResponseGenerator>) {
        add(.put, path, query, handler)
    }

    func delete(_ path: String, query: Set<String> = [], use handler: @escaping Handler<some ResponseGenerator>) {
        add(.delete, path, query, handler)
    }

    private func add(
        _ method: HTTPRequest.Method, _ path: String, _ query: Set<String>,
        _ handler: @escaping Handler<some ResponseGenerator>
    ) {
        router.on(RouterPath(path), method: method) { request, context -> Response in
            if let refusal = Self.refusal(of: request, pattern: path, query: query) { return refusal }
            return try await handler(request, context).response(from: request, context: context)
        }
        table.add(method, path)
    }

    /// The answer to a request the route must not take: one whose path has an empty segment (the
    /// router skips it, so `DELETE /v1/hosts//labels` would reach `DELETE /v1/hosts/:name` for a
    /// host named `labels`), or one with a query parameter the route does not read.
    static func refusal(of request: Request, pattern: String, query allowed: Set<String>) -> Response? {
        if let refusal = emptySegmentRefusal(request) { return refusal }
        // (Hummingbird keeps a value that is not valid percent-encoding as it came: `%zz` would be
        // taken for a request id of three characters.)
        for pair in (request.uri.query ?? "").split(separator: "&") where pair.removingPercentEncoding == nil {
            return NodeAPI.failure(
                NodeError.Code.invalid.rawValue,
                "the query's \(Validation.shown(String(pair))) is not valid percent-encoding", status: .badRequest)
        }
        for (name, _) in request.uri.queryParameters where !allowed.contains(String(name)) {
            let takes =
                allowed.isEmpty ? "it takes none" : "it takes \(allowed.sorted().joined(separator: ", "))"
            let meant = allowed.first { Self.loosely($0) == Self.loosely(String(name)) }
            return NodeAPI.failure(
                NodeError.Code.invalid.rawValue,
                "unknown query parameter '\(Validation.shown(String(name)))' for \(request.method) \(pattern): \(takes)"
                    + (meant.map { " (did you mean \($0)?)" } ?? ""),
                status: .badRequest)
        }
        return nil
    }

    /// The answer to a path with an empty segment (a trailing '/' is let be: it names nothing).
    static func emptySegmentRefusal(_ request: Request) -> Response? {
        let path = request.uri.path
        guard path.contains("//") else { return nil }
        return NodeAPI.failure(
            NodeError.Code.invalid.rawValue, "the path \(Validation.shown(path)) has an empty segment",
            status: .badRequest)
    }

    /// A parameter's name without case, '-' and '_': `requestId`, `request-id` and `requestid` are `request_id`.
    private static func loosely(_ name: String) -> String {
        String(name.lowercased().filter { $0 != "_" && $0 != "-" })
    }
}

/// The API's routes by method and path pattern (`:name` stands for any one segment).
struct RouteTable: Sendable {
    private var routes: [(method: HTTPRequest.Method, segments: [Substring])] = []

    mutating func add(_ method: HTTPRequest.Method, _ pattern: String) {
        routes.append((method, pattern.split(separator: "/")))
    }

    /// The methods some route takes at `path`, in the order they were added (HEAD after GET:
    /// the router answers it from the GET route); empty when no route has that path.
    func methods(at path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        var methods: [HTTPRequest.Method] = []
        for route in routes where Self.matches(route.segments, segments) {
            if !methods.contains(route.method) { methods.append(route.method) }
            if route.method == .get, !methods.contains(.head) { methods.append(.head) }
        }
        return methods
    }

    private static func matches(_ pattern: [Substring], _ segments: [Substring]) -> Bool {
        pattern.count == segments.count && zip(pattern, segments).allSatisfy { $0.first == ":" || $0 == $1 }
    }
}
