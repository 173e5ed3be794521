// dwcp-sim: runs the deterministic region simulator over many seeds.
//
//   dwcp-sim [--seeds N] [--first S] [--nodes 3|5|both] [--seed S --trace] [--flaw NAME]
//
// Each seed runs a whole region (the product's Raft code) with clients and injected faults, and
// checks safety on every step and linearizability at the end. A failing seed is printed with the
// command that replays it exactly. `--flaw reads-locally` (or `sends-before-sync`, `forwards-again-under-new-id`) puts a flaw in the driver on purpose,
// to watch the checks catch it (SimulationOptions.Flaw). A trap (a precondition in the code under
// test) or a fault names the seed it stopped in before the process ends (RunningSeedNote).
import Foundation
import Simulation

var seeds: UInt64 = 100
var first: UInt64 = 1
var nodeCounts = [3, 5]
var single: UInt64?
var trace = false
var flaw: SimulationOptions.Flaw?
var arguments = CommandLine.arguments.dropFirst().makeIterator()

func usage(_ message: String) -> Never {
    FileHandle.standardError.write(
        Data(
            "dwcp-sim: \(message)\nusage: dwcp-sim [--seeds N] [--first S] [--nodes 3|5|both] [--seed S [--trace]] [--flaw NAME]\n"
                .utf8))
    exit(2)
}

func number(_ text: String?, after flag: String) -> UInt64 {
    guard let text, let value = UInt64(text) else { usage("\(flag) needs a number") }
    return value
}

while let argument = arguments.next() {
    switch argument {
    case "--seeds": seeds = number(arguments.next(), after: argument)
    case "--first": first = number(arguments.next(), after: argument)
    case "--seed": single = number(arguments.next(), after: argument)
    case "--trace": trace = true
    case "--flaw":
        let name = arguments.next() ?? ""
        guard let chosen = SimulationOptions.Flaw(rawValue: name) else {
            usage("--flaw takes \(SimulationOptions.Flaw.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        flaw = chosen
    case "--nodes":
        switch arguments.next() {
        case "3": nodeCounts = [3]
        case "5": nodeCounts = [5]
        case "both": nodeCounts = [3, 5]
        default: usage("--nodes takes 3, 5 or both")
        }
    case "-h", "--help": usage("runs the region simulator")
    default: usage("unknown argument \(argument)")
    }
}

let started = Date()
var failures = 0
var runs = 0
let seedList = single.map { [$0] } ?? Array(first..<(first + seeds))
RunningSeedNote.install()
for seed in seedList {
    for nodes in nodeCounts {
        RunningSeedNote.set(
            "dwcp-sim: stopped in seed \(seed) with \(nodes) members; replay: swift run -c release --static-swift-stdlib dwcp-sim --seed \(seed) --nodes \(nodes) --trace"
                + (flaw.map { " --flaw \($0.rawValue)" } ?? "") + "\n")
        let report = Simulation.run(SimulationOptions(seed: seed, nodes: nodes, trace: trace, flaw: flaw))
        runs += 1
        if !report.passed {
            failures += 1
            print(report.summary)
            for violation in report.violations { print("  \(violation)") }
            print(
                "  replay: swift run -c release --static-swift-stdlib dwcp-sim --seed \(seed) --nodes \(nodes) --trace"
                    + (flaw.map { " --flaw \($0.rawValue)" } ?? ""))
        } else if single != nil {
            print(report.summary)
        }
    }
}
let elapsed = Date().timeIntervalSince(started)
print(String(format: "%d runs, %d failed, %.1f s", runs, failures, elapsed))
exit(failures == 0 ? 0 : 1)
