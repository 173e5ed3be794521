import Foundation
import Testing

@testable import Simulation

/// The simulator's runs are long and synchronous: they go on their own threads, so the other
/// suites' async tests keep the cooperative pool.
@Suite struct SimulatorTests {
    /// The CI run: 500 seeds (alternating 3 and 5 members), each with faults, checked on every
    /// step and for linearizability at the end. `swift run dwcp-sim --seeds N` runs more.
    @Test func fiveHundredSeedsKeepEveryInvariant() async {
        async let even = Self.onThread { Self.failures(seeds: stride(from: 2, through: 500, by: 2)) }
        async let odd = Self.onThread { Self.failures(seeds: stride(from: 1, through: 500, by: 2)) }
        let failures = await even + odd
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }

    @Test func aSeedReplaysExactly() async {
        let summaries = await Self.onThread {
            let first = Simulation.run(SimulationOptions(seed: 42, nodes: 5))
            let second = Simulation.run(SimulationOptions(seed: 42, nodes: 5))
            #expect(first.events > 1000)
            #expect(first.completedOperations > 100)
            #expect(first.elections >= 1)
            return [first.summary, second.summary]
        }
        #expect(summaries[0] == summaries[1])
    }

    @Test func faultsReallyHappen() async {
        let totals = await Self.onThread {
            var crashes = 0
            var snapshots = 0
            var changes = 0
            var forwarded = 0
            for seed in UInt64(1)...10 {
                let report = Simulation.run(SimulationOptions(seed: seed, nodes: 3))
                crashes += report.crashes
                snapshots += report.snapshotsSent
                changes += report.membershipChanges
                forwarded += report.forwardedWrites
            }
            return ["\(crashes)", "\(snapshots)", "\(changes)", "\(forwarded)"]
        }
        #expect(Int(totals[0])! > 5, "crashes")
        #expect(Int(totals[1])! > 0, "snapshots sent")
        #expect(Int(totals[2])! > 10, "membership changes")
        #expect(Int(totals[3])! > 10, "writes forwarded by followers")
    }

    static func failures(seeds: StrideThrough<Int>) -> [String] {
        var failed: [String] = []
        for seed in seeds {
            let report = Simulation.run(SimulationOptions(seed: UInt64(seed), nodes: seed % 2 == 0 ? 5 : 3))
            if !report.passed {
                failed.append(
                    report.summary + "\n  " + report.violations.joined(separator: "\n  ")
                        + "\n  replay: swift run dwcp-sim --seed \(seed) --nodes \(report.nodes) --trace")
            }
        }
        return failed
    }

    /// Runs `work` on a new thread and waits for it without holding a cooperative thread.
    static func onThread(_ work: @escaping @Sendable () -> [String]) async -> [String] {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
