import Foundation
import Scheduler
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

    @Test(
        "a batch is placed inline only while it is small: one VM on few hosts, not one on 10,000 hosts or a large batch",
        arguments: [
            (1, 64, true), (3, 16, true), (1, 1_000, false), (1, 10_000, false), (100, 64, false), (1_000, 10, false),
        ])
    func placementDispatch(vms: Int, hosts: Int, inline: Bool) {
        let requests = (0..<vms).map { PlacementRequest(vm: "v\($0)", region: "eu", cpus: 1, memoryBytes: 1 << 30) }
        #expect(Node.placesInline(requests, hostCount: hosts) == inline)
    }

    @Test("hosts' labels are parsed once per distinct text, malformed ones as none, and the cache stays bounded")
    func labelsCache() {
        let cache = LabelsCache(limit: 2)
        #expect(cache.parsed(#"{"rack":"r1","ssd":"1"}"#) == ["rack": "r1", "ssd": "1"])
        #expect(cache.parsed(#"{"rack":"r1","ssd":"1"}"#) == ["rack": "r1", "ssd": "1"])
        #expect(cache.count == 1)
        #expect(cache.parsed("not json") == [:])
        #expect(cache.parsed(#"{"rack":"r2"}"#) == ["rack": "r2"])
        #expect(cache.count <= 2)
        #expect(cache.parsed(#"{"rack":"r1","ssd":"1"}"#) == ["rack": "r1", "ssd": "1"])
        // And in bytes: texts past the byte limit start it over.
        let small = LabelsCache(limit: 100, byteLimit: 40)
        _ = small.parsed(#"{"rack":"r1","ssd":"1"}"#)
        _ = small.parsed(#"{"rack":"r2"}"#)
        #expect(small.count == 2)
        #expect(small.parsed(#"{"rack":"r3","ssd":"0"}"#) == ["rack": "r3", "ssd": "0"])
        #expect(small.count == 1)
    }
}
