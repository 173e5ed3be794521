import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import dwcp

/// A node that took the connection but never answers (a stopped or frozen process): a read the
/// CLI sent on to such a leader goes back to the member after ``NodeClient/leaderAnswerTimeout``,
/// and a GET to such a node is reported after ``NodeClient/readAnswerTimeout``, not after the
/// minute a change may wait.
@Suite struct SilentNodeTests {
    /// An HTTP server that refuses the first request, naming `leaderAPI` as the leader (as a
    /// member does: 503 with `leader_api`), and answers every later one `{"answered": N}`.
    final class FakeMember: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let leaderAPI: String
        let requests = Mutex(0)

        init(leaderAPI: String) { self.leaderAPI = leaderAPI }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let count = requests.withLock {
                $0 += 1; return $0
            }
            let (status, body) =
                count == 1
                ? (
                    HTTPResponseStatus.serviceUnavailable,
                    #"{"error":{"code":"unavailable","message":"n2 is not the leader: ask n1","leader_api":"\#(leaderAPI)"}}"#
                ) : (.ok, #"{"answered":\#(count)}"#)
            var head = HTTPResponseHead(version: .http1_1, status: status)
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    @Test("a read sent on to a leader that takes the connection and never answers goes back to the member")
    func silentLeaderIsLeft() async throws {
        let (silent, silentPort) = try silentListener()
        defer { close(silent) }

        let member = FakeMember(leaderAPI: "127.0.0.1:\(silentPort)")
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(member)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let memberPort = try #require(server.localAddress?.port)

        // (Past NodeClient.unreachableRetryWindow, as the 15 s of a real run are: the attempt
        // that timed out is not made again.)
        var client = try NodeClient(address: "127.0.0.1:\(memberPort)")
        client.leaderAnswerTimeout = .milliseconds(2_500)
        let started = ContinuousClock.now
        var answered: Int64?
        do {
            answered = try await client.callLeader(.POST, "/v1/sql", body: .object([]), retrying: true)["answered"]?
                .intValue
        } catch {
            Issue.record(error)
        }
        let took = started.duration(to: .now)
        try await server.close()
        #expect(answered == 2)
        // (Loose, for a loaded machine: without the leader's timeout it waits a minute.)
        #expect(took < .seconds(30), "took \(took)")
    }

    @Test("a GET to a node that takes the connection and never answers is reported after the read timeout")
    func silentNodeIsReported() async throws {
        let (silent, port) = try silentListener()
        defer { close(silent) }
        var client = try NodeClient(address: "127.0.0.1:\(port)")
        // (Past NodeClient.unreachableRetryWindow, as the 20 s of a real run are.)
        client.readAnswerTimeout = .milliseconds(2_500)
        let started = ContinuousClock.now
        await #expect {
            _ = try await client.call(.GET, "/v1/status", retrying: true)
        } throws: { error in
            (error as? CLIError)?.code == .unreachable
                && (error as? CLIError)?.message.contains("took the request but did not answer within 2.5 seconds")
                    == true
        }
        // (Loose, for a loaded machine: without the read timeout it waits the minute a change does.)
        #expect(started.duration(to: .now) < .seconds(30))
    }

    /// An HTTP server that answers every request with a head that promises 100 bytes, sends 10,
    /// and closes the connection (a node that stopped in the middle of a long answer).
    final class BrokenAnswer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            var head = HTTPResponseHead(version: .http1_1, status: .ok)
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "100")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: #"{"vms":[{"#)))), promise: nil)
            context.close(promise: nil)
        }
    }

    @Test("an answer that breaks off after its head says so, and for an intent, to retry it with its request id")
    func brokenAnswerIsReported() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(BrokenAnswer())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let client = try NodeClient(address: "127.0.0.1:\(port)")
        let broken = "the node at 127.0.0.1:\(port) closed the connection in the middle of its answer (HTTP 200)"
        await #expect {
            _ = try await client.call(.POST, "/v1/vms", body: .object([("request_id", .string("r1"))]))
        } throws: { error in
            let message = (error as? CLIError)?.message ?? "\(error)"
            return message.hasPrefix(broken) && message.hasSuffix("retry it with the same request id")
        }
        await #expect {
            _ = try await client.call(.GET, "/v1/status")
        } throws: { error in
            let message = (error as? CLIError)?.message ?? "\(error)"
            return message.hasPrefix(broken) && !message.contains("request id")
        }
        try await server.close()
    }

    /// An HTTP server that answers 503: first that the intent may or may not apply (a leader took
    /// it, then lost its leadership), then that no leader took it in time; from the third request
    /// on it closes the connection without answering (the node stopped).
    final class DeposedLeader: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let requests = Mutex(0)
        /// From the third request on: answer 410 (the member was removed since) instead of
        /// closing the connection.
        let removedLater: Bool

        init(removedLater: Bool = false) { self.removedLater = removedLater }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let count = requests.withLock {
                $0 += 1
                return $0
            }
            guard count < 3 || removedLater else {
                context.close(promise: nil)
                return
            }
            let (status, code, message): (HTTPResponseStatus, String, String) =
                count == 1
                ? (
                    .serviceUnavailable, "unavailable",
                    "n1 lost its leadership before the intent (log index 988) committed: it may or may not apply; retry it with the same request id, at another member"
                )
                : count == 2
                    ? (
                        .serviceUnavailable, "unavailable",
                        "no leader took the forwarded intent in time; retry it with the same request id"
                    ) : (.gone, "removed", "n1 was removed from the region: it takes no intents")
            let body = #"{"error":{"code":"\#(code)","message":"\#(message)"}}"#
            var head = HTTPResponseHead(version: .http1_1, status: status)
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    @Test(
        "an intent a deposed leader took is reported as one that may or may not apply, not as what later tries say (a 503, a closed connection, a 410 removed)"
    )
    func undecidedIntentIsReportedAsSuch() async throws {
        for removedLater in [false, true] {
            try await Self.undecidedIntent(removedLater: removedLater)
        }
    }

    static func undecidedIntent(removedLater: Bool) async throws {
        let deposed = DeposedLeader(removedLater: removedLater)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(deposed)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        var client = try NodeClient(address: "127.0.0.1:\(try #require(server.localAddress?.port))")
        // The retries must not depend on how fast this machine answers: on a loaded one the first
        // answer alone has taken the default window (CI, 2 cores). The third request ends them.
        client.unavailableRetryWindow = .seconds(60)
        await #expect {
            _ = try await client.call(
                .POST, "/v1/hosts", body: .object([("request_id", .string("r1"))]), retrying: true)
        } throws: { error in
            (error as? CLIError)?.message.contains("log index 988) committed: it may or may not apply") == true
        }
        #expect(
            deposed.requests.withLock { $0 } == 3,
            "asked again after each 503, not after the connection closed or a 410")
        try await server.close()
    }
}
