import Hummingbird

/// Answers a request no route matches with the API's JSON error (`not_found`, naming the method
/// and path), instead of Hummingbird's bare 404 with an empty body.
///
/// Added to the router after every route, so it wraps only the router's not-found responder:
/// the routes themselves do not pass through it.
struct UnknownRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    // @concurrent: Hummingbird's requirement, spelled as this module (NonisolatedNonsendingByDefault) must.
    @concurrent func handle(
        _ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return NodeAPI.failure(
                NodeError.Code.notFound.rawValue,
                "no such route: \(request.method) \(request.uri.path) (docs/api.md lists the API)",
                status: .notFound)
        }
    }
}
