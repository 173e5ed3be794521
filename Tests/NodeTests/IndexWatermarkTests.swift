import Testing

@testable import Node

/// Waits on a log position: reached targets, deadlines expired by whoever ticks, and closing.
@Suite struct IndexWatermarkTests {
    @Test("a wait with a deadline ends with nil once the deadline passed and overdue waits are expired; others go on")
    func deadlines() async throws {
        let watermark = IndexWatermark(5)
        #expect(try await watermark.wait(until: 3, deadline: .now) == 5, "a reached target returns at once")
        async let overdue = watermark.wait(until: 10, deadline: .now + .milliseconds(50))
        async let patient = watermark.wait(until: 10, deadline: .now + .seconds(3600))
        async let plain = watermark.wait(until: 10)
        while watermark.waiterCount < 3 { try await Task.sleep(for: .milliseconds(5)) }
        watermark.expireOverdue()  // none due yet
        #expect(watermark.waiterCount == 3)
        try await Task.sleep(for: .milliseconds(60))
        watermark.expireOverdue()
        #expect(try await overdue == nil)
        #expect(watermark.waiterCount == 2)
        watermark.advance(to: 12)
        #expect(try await patient == 12)
        #expect(try await plain == 12)
    }
}
