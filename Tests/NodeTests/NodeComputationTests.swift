import Foundation
import Testing

@testable import Node

/// `Node.compute`: small work inline, large work on NIO's thread pool.
@Suite struct NodeComputationTests {
    @Test("large work runs on NIO's thread pool, small work on the caller's thread")
    func largeWorkLeavesTheCallersThread() async throws {
        let large = try await Node.compute(inline: false) { Thread.current.name ?? "" }
        #expect(large.contains("TP-#"), "ran on \(large)")
        let small = try await Node.compute(inline: true) { Thread.current.name ?? "" }
        #expect(!small.contains("TP-#"), "ran on \(small)")
    }
}
