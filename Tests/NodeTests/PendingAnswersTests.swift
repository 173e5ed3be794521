import Synchronization
import Testing

@testable import Node

/// The loops below wait up to a minute: in the whole suite on 2 cores, CPU-bound tests (the
/// simulator's seeds) can keep these tasks from running for seconds.
@Suite struct PendingAnswersTests {
    struct Closed: Error {}
    struct Late: Error {}

    @Test(
        "a repeated question is sent again under the same id on each tick that is due, until an answer it takes comes")
    func askRepeatsUntilAnswered() async throws {
        let answers = PendingAnswers<String> { Late() }
        let sent = Mutex<[UInt64]>([])
        async let answer = answers.ask(timeout: .seconds(120), every: .milliseconds(20), accepts: { $0 != "stray" }) {
            id in sent.withLock { $0.append(id) }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while sent.withLock({ $0.count < 3 }), ContinuousClock.now < deadline {
            answers.expireOverdue()
            try await Task.sleep(for: .milliseconds(5))
        }
        let ids = sent.withLock { $0 }
        #expect(ids.count >= 3 && Set(ids).count == 1, "\(ids)")
        answers.resolve(ids[0], with: .success("stray"))  // not taken: it goes on waiting
        #expect(answers.isWaiting(ids[0]))
        answers.resolve(ids[0], with: .success("here"))
        #expect(try await answer == "here")
        let count = sent.withLock { $0.count }
        answers.expireOverdue()
        #expect(sent.withLock { $0.count } == count, "asked again after the answer")
    }

    @Test(
        "askAgain(askedOf:) has the questions that went to that member asked again at the next tick, of whoever leads then; the others wait for their usual time"
    )
    func askAgainResendsOnlyThoseAskedOfTheMember() async throws {
        let answers = PendingAnswers<Int> { Late() }
        let questions = Questions()
        func question() -> Task<Int, any Error> {
            Task {
                try await answers.ask(timeout: .seconds(120), every: .seconds(60), accepts: { _ in true }) { id in
                    let to = questions.leader.withLock { $0 }
                    answers.note(id, askedOf: to)
                    questions.sent.withLock { $0[id, default: []].append(to) }
                }
            }
        }
        let first = question()
        let deadline = ContinuousClock.now + .seconds(60)
        while questions.sent.withLock({ $0.count < 1 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        questions.leader.withLock { $0 = "new" }
        let second = question()
        while questions.sent.withLock({ $0.count < 2 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        let ids = questions.sent.withLock { $0.keys.sorted() }
        try #require(ids.count == 2)
        answers.expireOverdue()
        #expect(questions.sent.withLock { $0 } == [ids[0]: ["old"], ids[1]: ["new"]], "asked again before it was due")
        answers.askAgain(askedOf: { $0 == "old" })
        #expect(answers.askedOf(ids[0]) == nil)
        answers.expireOverdue()
        #expect(questions.sent.withLock { $0 } == [ids[0]: ["old", "new"], ids[1]: ["new"]])
        #expect(answers.askedOf(ids[0]) == "new")
        answers.resolve(ids[0], with: .success(1))
        answers.resolve(ids[1], with: .success(2))
        #expect(try await first.value == 1)
        #expect(try await second.value == 2)
    }

    @Test("after failAll, a new wait or question fails at once with its error", .timeLimit(.minutes(1)))
    func closedAfterFailAll() async throws {
        let answers = PendingAnswers<Int> { Late() }
        answers.failAll(Closed())
        await #expect(throws: Closed.self) { try await answers.wait(timeout: .seconds(60)) { _ in } }
        await #expect(throws: Closed.self) {
            try await answers.ask(timeout: .seconds(60), every: .seconds(1), accepts: { _ in true }) { _ in
                Issue.record("asked")
            }
        }
    }

    @Test("a cancelled wait or question stops waiting at once, whether cancelled before or while it waits")
    func cancellationEndsTheWait() async throws {
        let answers = PendingAnswers<Int> { Late() }
        let asked = AskedIDs()
        // Deadlines are ended by a ticker, as in the node, so a wait that missed its cancellation
        // fails with the timeout error instead of hanging the test.
        let ticker = Task {
            while !Task.isCancelled {
                answers.expireOverdue()
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        defer { ticker.cancel() }
        let waiting = Task {
            try await answers.wait(timeout: .seconds(120)) { id in asked.ids.withLock { $0.append(id) } }
        }
        let questioning = Task {
            try await answers.ask(timeout: .seconds(120), every: .seconds(60), accepts: { _ in true }) { id in
                asked.ids.withLock { $0.append(id) }
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while asked.ids.withLock({ $0.count < 2 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        let ids = asked.ids.withLock { $0 }
        try #require(ids.count == 2)
        waiting.cancel()
        questioning.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        await #expect(throws: CancellationError.self) { try await questioning.value }
        #expect(!answers.isWaiting(ids[0]) && !answers.isWaiting(ids[1]))

        // Cancelled before it waits: it never sends.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await answers.wait(timeout: .seconds(120)) { _ in Issue.record("sent after cancellation") }
        }
        await #expect(throws: CancellationError.self) { try await early.value }
    }
}

/// Who leads, as a test's questions see it, and whom each question went to.
private final class Questions: Sendable {
    let leader = Mutex("old")
    let sent = Mutex<[UInt64: [String]]>([:])
}

/// The ids a test's questions were sent under.
private final class AskedIDs: Sendable {
    let ids = Mutex<[UInt64]>([])
}
