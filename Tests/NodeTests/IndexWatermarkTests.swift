import Testing

@testable import Node

/// Waits on a log position: reached targets, deadlines expired by whoever ticks, and closing.
@Suite struct IndexWatermarkTests {
    @Test("a wait with a deadline ends with nil once the deadline passed and overdue waits are expired; others go on")
    func deadlines() async throws {
        let watermark = IndexWatermark(5)
        #expect(try await watermark.wait(until: 3, deadline: .now) == 5, "a reached target returns at once")
        // Deadlines and expiries at fixed instants: no race with the clock on a loaded machine.
        let start = ContinuousClock.now
        async let overdue = watermark.wait(until: 10, deadline: start + .milliseconds(50))
        async let patient = watermark.wait(until: 10, deadline: start + .seconds(3600))
        async let plain = watermark.wait(until: 10)
        try #require(try await waitUntil { watermark.waiterCount == 3 })
        watermark.expireOverdue(now: start + .milliseconds(49))  // none due yet
        #expect(watermark.waiterCount == 3)
        watermark.expireOverdue(now: start + .milliseconds(50))
        #expect(try await overdue == nil)
        #expect(watermark.waiterCount == 2)
        watermark.advance(to: 12)
        #expect(try await patient == 12)
        #expect(try await plain == 12)
    }
}
