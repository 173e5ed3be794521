import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One write as the load sends it.
struct WriteRequest {
    var method: HTTPMethod
    var path: String
    var body: String
}

/// What one connection of the load saw: the latency of each write that started after the warm-up
/// and ended in the window (µs), the answers that were not 200, and the first such answer.
struct ConnectionResult: Sendable {
    var latencies: [Double] = []
    var failures = 0
    var firstFailure: String?
}

/// The bench's load: one keep-alive HTTP/1.1 connection per client, each a closed loop (the next
/// write is sent when the last one's answer has arrived), on NIO's event loops with no task per
/// write. The same load for both systems; it spends less of the shared machine's CPU per write than
/// a general-purpose client (BENCHMARKS.md, "The bench's own client"), so more of it measures the servers.
enum ClosedLoopLoad {
    static func run(
        host: String, port: Int, tls: NIOSSLContext?, clients: Int, warmUpEnds: NIODeadline, ends: NIODeadline,
        request: @escaping @Sendable (_ client: Int, _ sequence: Int) -> WriteRequest
    ) async throws -> ConnectionResult {
        var results: [EventLoopFuture<ConnectionResult>] = []
        for client in 0..<clients {
            let promise = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: ConnectionResult.self)
            results.append(promise.futureResult)
            let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: tls, serverHostname: nil))
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(
                            ClosedLoopWriter(
                                client: client, authority: "\(host):\(port)", warmUpEnds: warmUpEnds, ends: ends,
                                request: request, done: promise))
                    }
                }
            do {
                _ = try await bootstrap.connect(host: host, port: port).get()
            } catch {
                // This connection's handler never ran: its promise is answered here; those already
                // open end at the window's end.
                promise.fail(BenchError("connecting the load's client \(client) to \(host):\(port): \(error)"))
                for result in results { _ = try? await result.get() }
                throw error
            }
        }
        var total = ConnectionResult()
        for result in results {
            let one = try await result.get()
            total.latencies += one.latencies
            total.failures += one.failures
            total.firstFailure = total.firstFailure ?? one.firstFailure
        }
        return total
    }
}

/// A connection's closed loop: sends a write, waits for its whole answer, records its latency,
/// sends the next, until the window ends; then closes and reports. A server that stops answering
/// for 10 s past the window ends the connection with an error.
final class ClosedLoopWriter: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let client: Int
    private let authority: String
    private let warmUpEnds: NIODeadline
    private let ends: NIODeadline
    private let request: @Sendable (Int, Int) -> WriteRequest
    private let done: EventLoopPromise<ConnectionResult>
    private var result = ConnectionResult()
    private var sequence = 0
    private var started = NIODeadline.now()
    private var status: HTTPResponseStatus = .ok
    private var answer = ""
    private var finished = false
    private var deadline: Scheduled<Void>?

    init(
        client: Int, authority: String, warmUpEnds: NIODeadline, ends: NIODeadline,
        request: @escaping @Sendable (Int, Int) -> WriteRequest, done: EventLoopPromise<ConnectionResult>
    ) {
        self.client = client
        self.authority = authority
        self.warmUpEnds = warmUpEnds
        self.ends = ends
        self.request = request
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(deadline: ends + .seconds(10)) {
            self.finish(context, error: "no answer within 10 s of the window's end")
        }
        send(context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            answer = ""
            if !head.isKeepAlive {
                // The load keeps one connection per client; a server that closes them is not measured by it.
                finish(context, error: "the server answered \(head.status) and closes the connection (no keep-alive)")
            }
        case .body(let buffer):
            if status != .ok { answer += String(buffer: buffer) }
        case .end:
            guard !finished else { return }
            let now = NIODeadline.now()
            if status != .ok {
                result.failures += 1
                result.firstFailure = result.firstFailure ?? "\(status): \(answer)"
            } else if started >= warmUpEnds, now <= ends {
                result.latencies.append(Double((now - started).nanoseconds) / 1000)
            }
            if now < ends { send(context: context) } else { finish(context, error: nil) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context, error: "the server closed the connection")
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(context, error: "\(error)")
    }

    private func send(context: ChannelHandlerContext) {
        sequence += 1
        let write = request(client, sequence)
        var head = HTTPRequestHead(version: .http1_1, method: write.method, uri: write.path)
        head.headers.add(name: "Host", value: authority)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(write.body.utf8.count))
        started = .now()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(
            wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: write.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Reports once. A connection that fails before the window's end fails the run; one that fails
    /// after it counts the write it waited for as failed.
    private func finish(_ context: ChannelHandlerContext, error: String?) {
        guard !finished else { return }
        finished = true
        deadline?.cancel()
        context.close(promise: nil)
        guard let error else { return done.succeed(result) }
        if NIODeadline.now() < ends {
            done.fail(BenchError("a connection of the load failed: \(error)"))
        } else {
            result.failures += 1
            result.firstFailure = result.firstFailure ?? error
            done.succeed(result)
        }
    }
}
