import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import dwcp

/// A read that a member sends on to the leader it names, where the leader took the connection but
/// never answers (a stopped or frozen process): the CLI goes back to the member after
/// ``NodeClient/leaderAnswerTimeout``, not after the minute any request may wait.
@Suite struct SilentLeaderTests {
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
        // The silent leader: a socket that listens and never accepts (the kernel completes the
        // connection in its backlog), as a frozen process's does.
        let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(silent >= 0)
        defer { close(silent) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(silent, pointer, length) == 0 && listen(silent, 16) == 0
                    && getsockname(silent, pointer, &length) == 0
            }
        }
        try #require(bound)
        let silentPort = Int(UInt16(bigEndian: address.sin_port))

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

        var client = try NodeClient(address: "127.0.0.1:\(memberPort)")
        client.leaderAnswerTimeout = .milliseconds(500)
        let started = ContinuousClock.now
        let answer = try await client.callLeader(.POST, "/v1/sql", body: .object([]), retrying: true)
        let took = started.duration(to: .now)
        #expect(answer["answered"]?.intValue == 2)
        #expect(took < .seconds(5), "took \(took)")
        try await server.close()
    }
}
