import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// An HTTP answer and how long the node took to give it: from the request's head leaving to the
/// answer's head arriving, both taken on the connection's event loop. A test task that timed the
/// call itself would count the seconds it may wait to resume (a full run's tasks queue for the
/// cooperative pool's two threads on a 2-core machine).
struct TimedAnswer {
    let status: Int
    let text: String
    let headers: HTTPHeaders
    let took: Duration
}

/// Sends `body` with `method` and returns the answer with the node's time to answer.
func timedExchange(_ method: HTTPMethod, _ url: String, _ body: String) async throws -> TimedAnswer {
    var request = try HTTPClient.Request(url: url, method: method)
    request.body = .string(body)
    let timer = AnswerTimer()
    return try await httpClient(for: url).execute(
        request: request, delegate: timer, deadline: .now() + .seconds(30)
    ).get()
}

/// Collects an answer and the instants its timing is taken from (called on the connection's
/// event loop; the state is under a lock all the same, to be `Sendable`).
private final class AnswerTimer: HTTPClientResponseDelegate {
    typealias Response = TimedAnswer

    private struct State {
        var sent: ContinuousClock.Instant?
        var answered: ContinuousClock.Instant?
        var head: HTTPResponseHead?
        var body = ByteBuffer()
    }
    private let state = Mutex(State())

    func didSendRequestHead(task: HTTPClient.Task<Response>, _ head: HTTPRequestHead) {
        state.withLock { $0.sent = .now }
    }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        state.withLock {
            $0.answered = .now
            $0.head = head
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        state.withLock {
            var part = part
            $0.body.writeBuffer(&part)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> TimedAnswer {
        try state.withLock { state in
            guard let sent = state.sent, let answered = state.answered, let head = state.head else {
                throw CLIFailure("an answer without its request's or its own head")
            }
            return TimedAnswer(
                status: Int(head.status.code), text: String(buffer: state.body), headers: head.headers,
                took: sent.duration(to: answered))
        }
    }
}
