import ArgumentParser
import Node
import Store

/// `dwcp plan vm create …`: where VMs would go, without writing anything.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show what an intent would do, without writing anything.",
        subcommands: [PlanVM.self])

    struct PlanVM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vm", abstract: "Plan VM intents.", subcommands: [PlanCreate.self])
    }

    struct PlanCreate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Where `vm create` with these flags would place the VM(s), and why.")

        @OptionGroup var spec: VMSpecOptions
        @OptionGroup var freshness: ReadConsistencyOption
        @OptionGroup var output: JSONOutputOption
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let answer = try await client.client().callLeader(
                .POST, "/v1/plan/vms?\(freshness.queryItem)", body: .object(try spec.body()), retrying: true)
            if output.json {
                print(answer.serialized())
                return
            }
            let index = answer["placement_index"]?.stringValue ?? "?"
            print("computed at log index \(answer["applied_index"]?.stringValue ?? "?"); nothing was written")
            var placesAny = false
            if case .array(let decisions)? = answer["decisions"] {
                for d in decisions {
                    let vm = d["vm"]?.stringValue ?? "?"
                    if let host = d["host"]?.stringValue {
                        placesAny = true
                        print("\nVM \(vm) would go to \(host)")
                    } else {
                        print("\nVM \(vm) would be unschedulable: \(d["reason"]?.stringValue ?? "")")
                    }
                    if let explanation = d["explanation"] { print(describe(explanation)) }
                }
            }
            // The hint is for a placement worth keeping; a VM that would be unschedulable has none.
            if placesAny {
                print("\nto commit exactly this placement: dwcp vm create … --check-index \(index)")
            }
        }
    }
}

/// `dwcp rebalance --plan`: migrations that would improve placement.
struct Rebalance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Propose migrations that free hosts or repair soft anti-affinity (a plan only).")

    @Flag(name: .long, help: "Only plan (required: executing moves comes with live migration).")
    var plan = false

    @Option(name: .long, help: "Only this region.")
    var region: String?

    @OptionGroup var freshness: ReadConsistencyOption
    @OptionGroup var output: JSONOutputOption
    @OptionGroup var client: ClientOptions

    func run() async throws {
        guard plan else {
            throw CLIError(
                .usage, "only 'dwcp rebalance --plan' exists yet: moves are executed by live migration, not built yet")
        }
        if let region { try usage { try Validation.name(region, what: "region") } }
        let answer = try await client.client().callLeader(
            .GET, "/v1/rebalance?\(freshness.queryItem)" + (region.map { "&region=\($0)" } ?? ""), retrying: true)
        if output.json {
            print(answer.serialized())
            return
        }
        print(
            "computed at log index \(answer["applied_index"]?.stringValue ?? "?"): hosts in use \(answer["hosts_in_use"]?.stringValue ?? "?") -> \(answer["hosts_in_use_after"]?.stringValue ?? "?")"
        )
        guard case .array(let moves)? = answer["moves"], !moves.isEmpty else {
            print("no moves would improve placement")
            return
        }
        for m in moves {
            print(
                "move \(m["vm"]?.stringValue ?? "?") from \(m["from"]?.stringValue ?? "?") to \(m["to"]?.stringValue ?? "?"): \(m["reason"]?.stringValue ?? "") [\(m["gain"]?.stringValue ?? "")]"
            )
        }
    }
}
