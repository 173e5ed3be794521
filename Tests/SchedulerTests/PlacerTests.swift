import Testing

@testable import Scheduler

@Suite struct PlacerTests {
    let gib: Int64 = 1 << 30

    @Test("best fit picks the host left with the least free capacity")
    func bestFit() {
        let hosts = [
            HostCapacity(name: "big", region: "eu", cpus: 64, memoryBytes: 256 * gib),
            HostCapacity(
                name: "snug", region: "eu", cpus: 4, memoryBytes: 8 * gib, cpusUsed: 2, memoryUsedBytes: 6 * gib),
            HostCapacity(name: "other-region", region: "us", cpus: 2, memoryBytes: 2 * gib),
        ]
        let decision = Placer().place(PlacementRequest(vm: "v", region: "eu", cpus: 2, memoryBytes: 2 * gib), on: hosts)
        #expect(decision.host == "snug")
        #expect(decision.explanation.candidates.map(\.host) == ["snug", "big"])
        #expect(decision.explanation.filteredOut.first { $0.filter == "region" }?.count == 1)
    }

    @Test("ties go to the name that sorts first, whatever the input order")
    func deterministicTies() {
        let a = HostCapacity(name: "a", region: "eu", cpus: 8, memoryBytes: 8 * gib)
        let b = HostCapacity(name: "b", region: "eu", cpus: 8, memoryBytes: 8 * gib)
        let request = PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib)
        #expect(Placer().place(request, on: [a, b]).host == "a")
        #expect(Placer().place(request, on: [b, a]).host == "a")
    }

    @Test("a VM that fits nowhere gets a reason naming the exhausted dimension")
    func unschedulable() {
        let hosts = [
            HostCapacity(name: "h1", region: "eu", cpus: 8, memoryBytes: 4 * gib),
            HostCapacity(name: "h2", region: "eu", cpus: 2, memoryBytes: 64 * gib),
            HostCapacity(name: "h3", region: "eu", state: "draining", cpus: 64, memoryBytes: 64 * gib),
        ]
        let decision = Placer().place(PlacementRequest(vm: "v", region: "eu", cpus: 4, memoryBytes: 8 * gib), on: hosts)
        #expect(decision.host == nil)
        #expect(
            decision.reason
                == "no host in eu with 4 free CPUs and 8GiB free memory; of 3 hosts: 1 not ready, 1 full on CPUs, 1 full on memory"
        )
        let none = Placer().place(PlacementRequest(vm: "v", region: "ap", cpus: 1, memoryBytes: gib), on: hosts)
        #expect(none.reason == "no host in ap")
    }

    @Test("placing many VMs never oversubscribes a host (random instances)")
    func neverOversubscribes() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<200 {
            let hosts = (0..<Int(rng.next() % 6 + 1)).map {
                HostCapacity(
                    name: "h\($0)", region: "eu", cpus: Int(rng.next() % 16 + 1),
                    memoryBytes: Int64(rng.next() % 32 + 1) * gib)
            }
            let requests = (0..<Int(rng.next() % 30)).map {
                PlacementRequest(
                    vm: "v\($0)", region: "eu", cpus: Int(rng.next() % 8 + 1),
                    memoryBytes: Int64(rng.next() % 8 + 1) * gib)
            }
            let decisions = Placer().place(requests, on: hosts)
            var used: [String: (Int, Int64)] = [:]
            for (request, decision) in zip(requests, decisions) {
                guard let host = decision.host else {
                    #expect(!decision.reason.isEmpty)
                    continue
                }
                used[host, default: (0, 0)].0 += request.cpus
                used[host, default: (0, 0)].1 += request.memoryBytes
            }
            for host in hosts {
                #expect((used[host.name]?.0 ?? 0) <= host.cpus)
                #expect((used[host.name]?.1 ?? 0) <= host.memoryBytes)
            }
        }
    }

    @Test("the explanation is stable JSON")
    func explanationJSON() {
        let hosts = [HostCapacity(name: "h1", region: "eu", cpus: 4, memoryBytes: 4 * gib)]
        let decision = Placer().place(PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib), on: hosts)
        #expect(
            decision.explanation.json
                == #"{"policy":"best-fit","hosts_evaluated":1,"filtered_out":{"region":0,"not_ready":0,"cpus":0,"memory":0},"candidates":[{"host":"h1","score":1.5,"free_cpus_after":3,"free_memory_bytes_after":3221225472}]}"#
        )
    }

    @Test("sizes print in the largest exact binary unit")
    func formatting() {
        #expect(formatBytes(512 << 20) == "512MiB")
        #expect(formatBytes(3 << 29) == "1.5GiB")
        #expect(formatBytes(1000) == "1000B")
    }
}

/// A small seeded generator, so random tests replay exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
