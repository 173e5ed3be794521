import NIOCore
import NIOPosix
import Testing

@testable import Node

/// `EventLoop.sleep`, the timer the Raft driver ticks on.
@Suite struct EventLoopSleepTests {
    @Test("sleeps at least as long as asked")
    func sleepsLongEnough() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let clock = ContinuousClock()
        let started = clock.now
        try await loop.sleep(for: .milliseconds(30))
        #expect(started.duration(to: clock.now) >= .milliseconds(30))
    }

    @Test(
        "a cancelled sleeper wakes at once with CancellationError, and a task cancelled before it sleeps does not sleep",
        arguments: [false, true])
    func cancellationEndsTheSleep(cancelledFirst: Bool) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: CancellationError.self) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                if cancelledFirst { group.cancelAll() }
                group.addTask { try await loop.sleep(for: .seconds(60)) }
                if !cancelledFirst {
                    try await Task.sleep(for: .milliseconds(20))
                    group.cancelAll()
                }
                try await group.waitForAll()
            }
        }
        #expect(started.duration(to: clock.now) < .seconds(30))
    }
}
