import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Query
import Replication
import ServiceLifecycle
import Store

/// The node's HTTP/JSON API (documented in docs/api.md): intents, SQL, watch and status.
/// Handlers parse and answer; the work is done by ``Node``.
public enum NodeAPI {
    /// Builds the HTTP server for `node` (HTTPS with the configuration's ``APITLS``).
    /// `onListening` receives the bound port (useful with port 0).
    public static func application(
        node: Node, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        // HEAD is answered wherever GET is, with the GET's headers and no body.
        let router = Router(options: .autoGenerateHeadEndpoints)
        let routes = APIRoutes(router)
        Self.routes(routes, node: node)
        router.add(middleware: UnknownRouteMiddleware(routes: routes.table))
        // Each connection takes the certificate of the moment (a SIGHUP reloads it).
        let connections = HTTP1Channel.Configuration(idleTimeout: TimeAmount(node.configuration.apiIdleTimeout))
        let server: HTTPServerBuilder =
            if let tls = node.apiTLS {
                .http1(configuration: connections) { node.apiTLS?.serverContext ?? tls.serverContext }
            } else {
                .http1(configuration: connections)
            }
        return Application(
            router: router,
            server: server,
            configuration: .init(
                address: .hostname(node.configuration.apiHost, port: node.configuration.apiPort), serverName: "dwcp"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                node.advertiseAPI(port: port)
                await onListening(port)
            },
            logger: logger)
    }

    static func routes(_ router: APIRoutes, node: Node) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: node.metrics.render(node: node))))
        }
        router.get("/v1/status") { _, _ in
            try json(encoding: node.status())
        }
        router.get("/v1/cluster", query: ["timeout_ms"]) { request, _ in
            try await handle(node) {
                let timeout = try timeoutParameter(of: request, default: .seconds(1), zero: "ask no member")
                return json(await node.clusterStatus(timeout: timeout))
            }
        }
        router.post("/v1/cluster/verify") { request, _ in
            try await handle(node) {
                try await onLeader(request, body: nil, node: node) {
                    json(.object([("log_index", .int(Int64(try await node.proposeViewsDigest())))]))
                }
            }
        }
        router.get("/v1/cluster/verify/last") { request, _ in
            try await handle(node) {
                try await onLeader(request, body: nil, node: node) { json(try node.periodicVerifyStatus()) }
            }
        }
        router.get("/v1/views/digest", query: ["log_index", "timeout_ms"]) { request, _ in
            try await handle(node) {
                guard let index = try logIndexParameter(of: request, "log_index") else {
                    throw NodeError(
                        .invalid, "the request lacks log_index (the index dwcp cluster verify's marker got)")
                }
                let timeout = try timeoutParameter(of: request, default: .seconds(10), zero: "do not wait")
                let digest = try await node.viewsDigest(at: index, timeout: timeout)
                return json(
                    .object([
                        ("node_id", .string(node.configuration.nodeID)), ("log_index", .int(Int64(index))),
                        ("schema_version", .string(digest.schemaVersion)),
                        ("tables", .array(digest.tables.map(\.json))),
                    ]))
            }
        }
        router.post("/v1/cluster/members") { request, _ in
            try await handle(node) {
                let bytes = try await collect(request)
                let body = try decode(ClusterChangeRequest.self, from: bytes)
                guard let address = body.address else { throw NodeError(.invalid, "a new member needs an address") }
                try Validation.name(body.id, what: "member")
                try Validation.memberAddress(address)
                let change: RaftMembershipChange =
                    body.learner == true
                    ? .addLearner(id: body.id, address: address) : .addVoter(id: body.id, address: address)
                return try await onLeader(request, body: bytes, node: node) {
                    let (index, warning) = try await node.addMember(change)
                    guard let warning else { return committedAt(index) }
                    return json(.object([("log_index", .int(Int64(index))), ("warning", .string(warning))]))
                }
            }
        }
        router.post("/v1/cluster/members/:id/promote") { request, context in
            try await handle(node) {
                let id = try pathParameter(context, "id")
                try Validation.name(id, what: "member")
                return try await onLeader(request, body: nil, node: node) {
                    committedAt(try await node.changeCluster(.promote(id: id)))
                }
            }
        }
        router.delete("/v1/cluster/members/:id") { request, context in
            try await handle(node) {
                let id = try pathParameter(context, "id")
                try Validation.name(id, what: "member")
                return try await onLeader(request, body: nil, node: node) {
                    committedAt(try await node.changeCluster(.remove(id: id)))
                }
            }
        }
        router.post("/v1/cluster/leader") { request, _ in
            try await handle(node) {
                let bytes = try await collect(request)
                let body = try decodeOptional(LeaderTransferRequest.self, from: bytes) ?? LeaderTransferRequest()
                return try await onLeader(request, body: bytes, node: node) {
                    let (leader, term) = try await node.moveLeadership(to: body.id)
                    return json(.object([("leader", .string(leader)), ("term", .int(Int64(term)))]))
                }
            }
        }
        router.post("/v1/hosts", query: ["request_id"]) { request, _ in
            try await handle(node) {
                let (host, requestID) = try await intentInput(node) {
                    let body = try await decode(AddHostRequest.self, from: request)
                    let host = HostAdded(
                        name: body.name, region: body.region ?? node.configuration.region, cpus: body.cpus,
                        memoryBytes: body.memoryBytes, labels: body.labels ?? [:])
                    return (host, try intentRequestID(request, body: body.requestID))
                }
                return receipt(try await node.submit(.addHost(host), requestID: requestID), subject: "host")
            }
        }
        router.delete("/v1/hosts/:name", query: ["request_id"]) { request, context in
            try await handle(node) {
                let name = try pathParameter(context, "name")
                let requestID = try await requestIDOnly(request, node: node)
                return receipt(try await node.submit(.removeHost(name: name), requestID: requestID), subject: "host")
            }
        }
        router.post("/v1/hosts/:name/evacuate", query: ["request_id"]) { request, context in
            try await handle(node) {
                let name = try pathParameter(context, "name")
                let requestID = try await requestIDOnly(request, node: node)
                let evacuated = try await node.submit(.evacuateHost(name: name), requestID: requestID)
                let vms = try node.vmsEvacuated(at: evacuated.logIndex)
                return receipt(evacuated, subject: "host", adding: [("vms", .array(vms.map { .string($0) }))])
            }
        }
        router.post("/v1/vms", query: ["request_id"]) { request, _ in
            try await handle(node) {
                let (body, vms, requestID) = try await intentInput(node) {
                    let body = try await decode(CreateVMRequest.self, from: request)
                    return (body, try body.vms(), try intentRequestID(request, body: body.requestID))
                }
                if body.count == nil && body.checkIndex == nil {
                    return receipt(try await node.submit(.createVM(vms[0]), requestID: requestID), subject: "vm")
                }
                let receipts = try await node.createVMs(vms, requestID: requestID, checkIndex: body.checkIndex)
                if body.count == nil { return receipt(receipts[0], subject: "vm") }
                return try await Node.compute(inline: receipts.count <= Node.inlineBatchVMs) {
                    json(
                        .object([
                            ("log_index", .int(Int64(receipts.first?.logIndex ?? 0))),
                            ("outcome", .string(receipts.first?.outcome ?? "applied")),
                            ("vms", .array(receipts.map { $0.subject ?? .null })),
                        ]))
                }
            }
        }
        router.post("/v1/plan/vms", query: ["consistency"]) { request, _ in
            try await handle(node) {
                let body = try await decode(CreateVMRequest.self, from: request)
                let vms = try body.vms()
                let consistency = try readConsistency(of: request)
                return json(try await node.plan(vms, consistency: consistency).json)
            }
        }
        router.get("/v1/vms/:name/console", query: ["follow"]) { request, context in
            try await handle(node) {
                let name = try pathParameter(context, "name")
                // (As every route that names a VM: 400 for a name no VM can have, not 404.)
                try Validation.name(name, what: "VM")
                let follow: Bool
                switch try parameter(request, "follow") {
                case nil, "", "0", "false": follow = false
                case "1", "true": follow = true
                case let other?:
                    // (Any other value was read as no follow, in silence.)
                    throw NodeError(.invalid, "invalid follow '\(Validation.shown(other))': give 1 or true, 0 or false")
                }
                guard follow else {
                    return Response(
                        status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: try await node.console(of: name))))
                }
                _ = try await node.consolePath(of: name)
                return Response(
                    status: .ok, headers: streamHeaders("text/plain; charset=utf-8", for: request),
                    body: ResponseBody { writer in
                        do {
                            // @concurrent: `writer` belongs to Hummingbird's body closure (not
                            // Sendable); a closure run on its caller's executor, this module's
                            // default, would carry it into the caller's isolation.
                            // Ends when the client goes away, even while nothing is written.
                            try await request.body.consumeWithCancellationOnInboundClose { _ in
                                try await node.followConsole(of: name) { @concurrent data in
                                    try await writer.write(ByteBuffer(bytes: data))
                                }
                            }
                        } catch is CancellationError {
                            // The client went away.
                        }
                        // Only the VM's stop ends the body; a node that stops (NodeError
                        // `unavailable`) throws, and the connection closes without the body's
                        // last chunk, so the client can tell the two apart.
                        try await writer.finish(nil)
                    })
            }
        }
        router.get("/v1/vms/:name/explain", query: ["consistency"]) { request, context in
            try await handle(node) {
                let consistency = try readConsistency(of: request)
                return json(
                    try await node.explain(vm: try pathParameter(context, "name"), consistency: consistency))
            }
        }
        router.get("/v1/rebalance", query: ["consistency", "region"]) { request, _ in
            try await handle(node) {
                let consistency = try readConsistency(of: request)
                return json(
                    try await node.rebalancePlan(
                        region: try parameter(request, "region"), consistency: consistency))
            }
        }
        router.put("/v1/hosts/:name/labels", query: ["request_id"]) { request, context in
            try await handle(node) {
                let name = try pathParameter(context, "name")
                let (labels, requestID) = try await intentInput(node) {
                    let body = try await decode(HostLabelsRequest.self, from: request)
                    return (body.labels, try intentRequestID(request, body: body.requestID))
                }
                return receipt(
                    try await node.submit(.setHostLabels(name: name, labels: labels), requestID: requestID),
                    subject: "host")
            }
        }
        for (action, state) in [("start", VMDesiredState.running), ("stop", .stopped)] {
            router.post("/v1/vms/:name/\(action)", query: ["request_id"]) { request, context in
                try await handle(node) {
                    let name = try pathParameter(context, "name")
                    let requestID = try await requestIDOnly(request, node: node)
                    return receipt(
                        try await node.submit(.setDesiredState(vm: name, state), requestID: requestID), subject: "vm")
                }
            }
        }
        router.delete("/v1/vms/:name", query: ["request_id"]) { request, context in
            try await handle(node) {
                let name = try pathParameter(context, "name")
                let requestID = try await requestIDOnly(request, node: node)
                return receipt(try await node.submit(.deleteVM(name: name), requestID: requestID), subject: "vm")
            }
        }
        router.post("/v1/sql") { request, _ in
            try await handle(node) {
                let body = try await decode(SQLRequest.self, from: request)
                let result = try await node.sql(
                    body.query, maxRows: try body.rowLimit(), consistency: try body.readConsistency())
                let cells = result.rows.count * max(result.columns.count, 1)
                return try await Node.compute(inline: cells <= Node.inlineResultCells) {
                    json(
                        .object([
                            ("columns", .array(result.columns.map { .string($0) })),
                            ("rows", .array(result.rows.map { .array($0) })),
                            ("applied_index", .int(Int64(result.appliedIndex))),
                        ]))
                }
            }
        }
        router.get("/v1/watch", query: ["from_index", "limit"]) { request, _ in
            try await handle(node) {
                let from = try logIndexParameter(of: request, "from_index") ?? node.consensus.committed.value + 1
                let limit: Int? = try parameter(request, "limit").map { raw in
                    guard let value = Int(raw), value >= 1 else {
                        throw NodeError(.invalid, "invalid limit '\(Validation.shown(raw))': a count, 1 or more")
                    }
                    return value
                }
                try node.checkWatchStart(from)
                return Response(
                    // The connection closes when a stream ends (it waited on the inbound side):
                    // said, so that a client does not send its next request on it.
                    status: .ok, headers: streamHeaders("application/x-ndjson", for: request),
                    body: ResponseBody { writer in
                        do {
                            // Ends when the node shuts down: it closes the commit watermark the watch waits on.
                            // @concurrent: as for the console above.
                            // And when the client goes away: a watch far ahead of the log writes
                            // nothing, and would otherwise wait on the commit index forever.
                            try await request.body.consumeWithCancellationOnInboundClose { _ in
                                try await node.watch(from: from, limit: limit) { @concurrent entry in
                                    try await writer.write(
                                        ByteBuffer(string: Node.watchLine(entry).serialized() + "\n"))
                                }
                            }
                        } catch is CancellationError {
                        } catch let error as NodeError where error.code == .unavailable || error.code == .removed {
                            // The node stops, or its member was removed: say so, so the client can
                            // tell this from an end it asked for.
                            let line = errorBody(code: error.code.rawValue, message: error.message).serialized() + "\n"
                            try? await writer.write(ByteBuffer(string: line))
                        } catch {
                            // (A code of the API's table: `damaged` for a log entry the node
                            // cannot read, the node's own code for its refusals, else `internal`.)
                            let code =
                                if let error = error as? StoreError, error.isLogDamage {
                                    "damaged"
                                } else {
                                    (error as? NodeError)?.code.rawValue ?? NodeError.Code.internal.rawValue
                                }
                            node.noteServerError(error)
                            let line = errorBody(code: code, message: "\(error)").serialized() + "\n"
                            try await writer.write(ByteBuffer(string: line))
                        }
                        try await writer.finish(nil)
                    })
            }
        }
    }

    // MARK: Helpers

    /// Reads an intent's input (its body, its request id): a refusal of it counts among the
    /// intents' outcomes (`dwcp_intents_total`), as a refusal by the intent's validation does.
    static func intentInput<T>(_ node: Node, _ read: () async throws -> T) async throws -> T {
        do {
            return try await read()
        } catch {
            node.metrics.countIntent((error as? NodeError)?.code.rawValue ?? "invalid")
            throw error
        }
    }

    static func handle(_ node: Node, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch {
            let response = failure(for: error)
            // The node's own failures (damaged views, say) are the operator's to know of too, not
            // only the client's that met them.
            if response.status == .internalServerError || response.status.code == 507 { node.noteServerError(error) }
            return response
        }
    }

    /// The API's answer to `error`.
    static func failure(for error: any Error) -> Response {
        switch error {
        case let error as NodeError:
            return failure(
                error.code.rawValue, error.message, status: status(for: error.code), leaderAPI: error.leaderAPI)
        case let error as QueryError:
            let status: HTTPResponse.Status =
                switch error.code {
                case .timeout: .requestTimeout
                case .busy: .tooManyRequests
                case .damaged: .internalServerError
                default: .badRequest
                }
            return failure(error.code.rawValue, error.message, status: status)
        case let error as StoreError:
            if error.code == .compacted { return failure("compacted", error.message, status: .gone) }
            return failure(error.code.rawValue, error.message, status: .internalServerError)
        case let error as HTTPError:
            return failure("invalid", error.body ?? "\(error.status)", status: error.status)
        case is CancellationError:
            return failure("unavailable", "the node is shutting down", status: .serviceUnavailable)
        default:
            return failure("internal", "\(error)", status: .internalServerError)
        }
    }

    /// The consistency a read's `?consistency=` asks for (linearizable when none is given).
    static func readConsistency(of request: Request) throws -> ReadConsistency {
        try ReadConsistency(asked: try parameter(request, "consistency"))
    }

    /// An intent's request id, given in the query (`?request_id=`) or in the JSON body, either:
    /// each route's documented place was easy to miss, and an id given in the other place was
    /// dropped without a word, so a retry applied twice. Given in both, the two must agree.
    /// The request id of an intent whose request carries nothing else: in the query, or in a JSON
    /// body that may be absent (counted as the intent's outcome when it is refused).
    static func requestIDOnly(_ request: Request, node: Node) async throws -> String? {
        try await intentInput(node) {
            try intentRequestID(request, body: try await decodeOptional(RequestIDOnly.self, from: request)?.requestID)
        }
    }

    static func intentRequestID(_ request: Request, body: String?) throws -> String? {
        let query = try parameter(request, "request_id")
        if let query, let body, query != body {
            throw NodeError(
                .invalid,
                "request_id is given in the query (\(Validation.shown(query))) and in the body (\(Validation.shown(body))): give one"
            )
        }
        return query ?? body
    }

    /// A path segment's value (`:name` in the route), percent-decoded: `/v1/hosts/h%31` names the
    /// host `h1`, and a refusal quotes the name as the client meant it, not as the URL carried it.
    static func pathParameter(_ context: BasicRequestContext, _ name: String) throws -> String {
        let raw = try context.parameters.require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw NodeError(
                .invalid, "the \(name) in the path (\(Validation.shown(raw))) is not valid percent-encoding")
        }
        return decoded
    }

    /// A query parameter's value, nil when it is not given; one given more than once is refused
    /// (which of two request ids, limits or regions was meant cannot be told).
    static func parameter(_ request: Request, _ name: String) throws -> String? {
        let given = request.uri.queryParameters.getAll(name)
        guard given.count <= 1 else { throw NodeError(.invalid, "\(name) is given \(given.count) times: give it once") }
        return given.first.map { String($0) }
    }

    /// The log index a query parameter names (`log_index`, `from_index`): given once, in digits,
    /// 1 or more, and no more than the views keep (``Validation/logIndex(_:field:)``); nil when
    /// it is not given.
    static func logIndexParameter(of request: Request, _ name: String) throws -> UInt64? {
        guard let raw = try parameter(request, name) else { return nil }
        let digits = !raw.isEmpty && raw.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        if digits, UInt64(raw) == nil {
            // Digits past 64 bits: as an index past 2^63-1, no log reaches it.
            throw NodeError(.invalid, "invalid \(name) \(Validation.shown(raw)): a log index is at most \(Int64.max)")
        }
        guard digits, let index = UInt64(raw), index >= 1 else {
            throw NodeError(.invalid, "invalid \(name) '\(Validation.shown(raw))': a log index, 1 or more")
        }
        try Validation.logIndex(index, field: name)
        return index
    }

    static func status(for code: NodeError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalid, .query: .badRequest
        case .notFound: .notFound
        case .conflict: .conflict
        case .compacted, .removed: .gone
        case .unavailable: .serviceUnavailable
        case .diskFull: HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .internal: .internalServerError
        }
    }

    /// Runs `answer`, for a request only the leader can answer. On a member that does not lead,
    /// the request goes on to the leader's API (``LeaderRelay``) and the leader's answer is this
    /// one's. When no connection to the leader could be made, `answer` runs once more (this member
    /// may lead by now, or know another leader, whom its refusal names); when the request came
    /// from another member, the refusal (naming the leader's API) is the answer. When the leader
    /// may have had the request but no answer came back, the answer says the change may or may
    /// not have been made, without `leader_api`: the CLI must not send it again on its own.
    static func onLeader(
        _ request: Request, body: ByteBuffer?, node: Node, _ answer: () async throws -> Response
    ) async throws -> Response {
        do {
            return try await answer()
        } catch let error as NodeError where error.code == .unavailable && error.leaderAPI != nil {
            guard !LeaderRelay.wasRelayed(request), let leaderAPI = error.leaderAPI else { throw error }
            switch await LeaderRelay.send(
                request.method, request.uri.path, body: body, to: leaderAPI, from: node.configuration.nodeID,
                tls: node.apiTLS, logger: node.logger)
            {
            case .answered(let response, let notLeading):
                // The member asked handed its leadership to this one meanwhile (a leader asked to
                // remove itself does, first): nothing was changed there, and this one answers.
                if notLeading, node.consensus.isLeader { return try await answer() }
                return response
            case .notSent:
                return try await answer()
            case .unknown(let why):
                let outcome =
                    request.method == .get
                    ? "ask again" : "the change may or may not have been made; see dwcp cluster status"
                throw NodeError(
                    .unavailable,
                    "sent on to the leader's API at \(leaderAPI), which did not answer (\(why)): \(outcome)")
            }
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        try decode(type, from: try await collect(request))
    }

    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T {
        guard let value = try decodeOptional(type, from: buffer) else {
            throw NodeError(.invalid, "the request needs a JSON body")
        }
        return value
    }

    static func decodeOptional<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T? {
        try decodeOptional(type, from: try await collect(request))
    }

    /// The request's body (up to 1 MiB).
    static func collect(_ request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: 1 << 20)
        } catch let error as NIOTooManyBytesError {
            throw NodeError(.invalid, "the request body is larger than 1MiB", cause: error)
        } catch {
            throw NodeError(.invalid, "the request body could not be read: \(error)", cause: error)
        }
    }

    static func decodeOptional<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws -> T? {
        guard buffer.readableBytes > 0 else { return nil }
        let json: JSONValue
        do {
            json = try buffer.withUnsafeReadableBytes { bytes in
                Result { () throws(JSONSyntaxError) in try JSONParser.parse(bytes) }
            }.get()
        } catch {
            switch error.code {
            case .duplicateKey:
                // Foundation's decoder would take one of the two values without a word
                // (`{"cpus": 2, "cpus": 16}` would create a VM of 2 CPUs): refused, naming the key.
                throw NodeError(.invalid, "the request body names the field '\(error.path)' twice", cause: error)
            case .numberOutOfRange where !error.path.isEmpty:
                throw NodeError(.invalid, "field '\(error.path)' holds a number out of range for it", cause: error)
            case .numberOutOfRange, .invalid:
                break
            }
            throw NodeError(.invalid, "the request body is not valid JSON (\(error.message))", cause: error)
        }
        if let body = T.self as? any APIRequestBody.Type, case .object(let members) = json {
            try body.refuseUnknown(members.map(\.0))
        }
        do {
            return try JSONValueDecoder().decode(T.self, from: json)
        } catch let error as DecodingError {
            func field(_ context: DecodingError.Context) -> String {
                context.codingPath.map(\.stringValue).joined(separator: ".")
            }
            switch error {
            case .keyNotFound(let key, _):
                throw NodeError(.invalid, "the request lacks the field '\(key.stringValue)'", cause: error)
            case .typeMismatch(_, let context) where context.codingPath.isEmpty,
                .valueNotFound(_, let context) where context.codingPath.isEmpty:
                throw NodeError(.invalid, "the request body must be a JSON object", cause: error)
            case .typeMismatch(_, let context):
                throw NodeError(.invalid, "field '\(field(context))' has the wrong type", cause: error)
            case .valueNotFound(_, let context):
                throw NodeError(.invalid, "field '\(field(context))' is null", cause: error)
            case .dataCorrupted(let context):
                throw NodeError(
                    .invalid,
                    "field '\(field(context))' holds a number it cannot take: a fraction, or a number out of range for it",
                    cause: error)
            @unknown default:
                throw NodeError(.invalid, "the request body does not decode: \(error)", cause: error)
            }
        }
    }

    /// The request's `timeout_ms` (0 to 10,000), or `fallback` without one; `zero` says what 0 means.
    static func timeoutParameter(of request: Request, default fallback: Duration, zero: String) throws -> Duration {
        guard let raw = try parameter(request, "timeout_ms") else { return fallback }
        guard let milliseconds = Int(raw), (0...10_000).contains(milliseconds) else {
            throw NodeError(
                .invalid, "invalid timeout_ms '\(Validation.shown(raw))': milliseconds from 0 (\(zero)) to 10000")
        }
        return .milliseconds(milliseconds)
    }

    /// The answer to an intent: its log index, its outcome, the row of its `subject` as it
    /// applied, and `more` fields.
    static func receipt(_ receipt: IntentReceipt, subject: String, adding more: [(String, JSONValue)] = []) -> Response
    {
        json(
            .object(
                [
                    ("log_index", .int(Int64(receipt.logIndex))), ("outcome", .string(receipt.outcome)),
                    (subject, receipt.subject ?? .null),
                ] + more))
    }

    /// The answer to a membership change: the index it committed at.
    static func committedAt(_ index: UInt64) -> Response { json(.object([("log_index", .int(Int64(index)))])) }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var text = value.serializedBytes()
        text.append(UInt8(ascii: "\n"))
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
    }

    static func json<T: Encodable>(encoding value: T) throws -> Response {
        let data = try JSONEncoder().encode(value)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func errorBody(code: String, message: String, leaderAPI: String? = nil) -> JSONValue {
        var fields: [(String, JSONValue)] = [("code", .string(code)), ("message", .string(message))]
        if let leaderAPI { fields.append(("leader_api", .string(leaderAPI))) }
        return .object([("error", .object(fields))])
    }

    /// The headers of a streamed answer: its content type, and `Connection: close` (the
    /// connection closes when the stream ends, so a client sends no next request on it). Not
    /// for HEAD: its answer has no stream, and the connection stays open for the next request.
    static func streamHeaders(_ contentType: String, for request: Request) -> HTTPFields {
        request.method == .head ? [.contentType: contentType] : [.contentType: contentType, .connection: "close"]
    }

    static func failure(_ code: String, _ message: String, status: HTTPResponse.Status, leaderAPI: String? = nil)
        -> Response
    {
        json(errorBody(code: code, message: message, leaderAPI: leaderAPI), status: status)
    }
}
