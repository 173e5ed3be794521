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

    @Test("failWaiting(askedOf:) fails the waiters whose question went to that member; the others wait on")
    func failWaitingFailsOnlyThoseAskedOfTheMember() async throws {
        let answers = PendingAnswers<Int> { Late() }
        let asked = AskedIDs()
        let toOld = Task {
            try await answers.wait(timeout: .seconds(60)) { id in
                answers.note(id, askedOf: "old")
                asked.ids.withLock { $0.append(id) }
            }
        }
        let toNew = Task {
            try await answers.wait(timeout: .seconds(60)) { id in
                answers.note(id, askedOf: "new")
                asked.ids.withLock { $0.append(id) }
            }
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while asked.ids.withLock({ $0.count < 2 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        answers.failWaiting(askedOf: "old", Closed())
        await #expect(throws: Closed.self) { try await toOld.value }
        let waiting = asked.ids.withLock { $0 }.filter { answers.isWaiting($0) }
        try #require(waiting.count == 1, "the question to the new leader still waits")
        answers.resolve(waiting[0], with: .success(7))
        #expect(try await toNew.value == 7)
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

/// The ids a test's questions were sent under.
private final class AskedIDs: Sendable {
    let ids = Mutex<[UInt64]>([])
}
