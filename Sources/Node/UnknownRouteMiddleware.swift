import Hummingbird

/// Answers a request no route matches with the API's JSON error, instead of Hummingbird's bare
/// 404 with an empty body: `405 method_not_allowed` with an `Allow` header when the path is one
/// the API serves with other methods, `404 not_found` naming the method and path otherwise.
///
/// Added to the router after every route, so it wraps only the router's not-found responder:
/// the routes themselves do not pass through it.
struct UnknownRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable

    // @concurrent: Hummingbird's requirement, spelled as this module (NonisolatedNonsendingByDefault) must.
    @concurrent func handle(
        _ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // (The router skips empty segments: `PUT /v1/hosts//labels` is no route's, but would
            // be answered 405 for `/v1/hosts/labels`.)
            if let refusal = APIRoutes.emptySegmentRefusal(request) { return refusal }
            let allowed = routes.methods(at: request.uri.path)
            if !allowed.isEmpty {
                let names = allowed.map(\.rawValue).joined(separator: ", ")
                var response = NodeAPI.failure(
                    "method_not_allowed",
                    "\(request.method) is not served at \(request.uri.path): it takes \(names) (docs/api.md lists the API)",
                    status: .methodNotAllowed)
                response.headers[.allow] = names
                return response
            }
            return NodeAPI.failure(
                NodeError.Code.notFound.rawValue,
                "no such route: \(request.method) \(request.uri.path) (docs/api.md lists the API)",
                status: .notFound)
        }
    }
}
