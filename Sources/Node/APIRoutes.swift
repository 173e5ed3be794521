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

    func get(_ path: String, use handler: @escaping Handler<some ResponseGenerator>) {
        add(.get, path, handler)
    }

    func post(_ path: String, use handler: @escaping Handler<some ResponseGenerator>) {
        add(.post, path, handler)
    }

    func put(_ path: String, use handler: @escaping Handler<some ResponseGenerator>) {
        add(.put, path, handler)
    }

    func delete(_ path: String, use handler: @escaping Handler<some ResponseGenerator>) {
        add(.delete, path, handler)
    }

    private func add(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler<some ResponseGenerator>)
    {
        router.on(RouterPath(path), method: method, use: handler)
        table.add(method, path)
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
