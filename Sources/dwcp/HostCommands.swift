import ArgumentParser
import Node
import Scheduler
import Store

/// `dwcp host add|list|label|remove|evacuate`.
struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host", abstract: "Add, list, relabel, remove or evacuate hosts.",
        subcommands: [Add.self, List.self, Label.self, Remove.self, Evacuate.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a host to the fleet.")

        @Argument(help: "The host's name (a DNS label).")
        var name: String

        @Option(name: .long, help: "The host's region (default: the node's).")
        var region: String?

        @Option(name: .long, help: "CPUs the host offers to VMs.")
        var cpus: Int

        @Option(name: .long, help: "Memory the host offers to VMs: 64GiB, 1.5TiB, or bytes.")
        var memory: String

        @Option(name: .long, parsing: .singleValue, help: "A label, key=value (repeatable).")
        var label: [String] = []

        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let memoryBytes = try usage { try ByteSize.parse(memory) }
            let labels = try usage { try Validation.parseLabels(label) }
            try usage {
                try Validation.name(name, what: "host")
                if let region { try Validation.name(region, what: "region") }
                try Validation.cpus(cpus, range: Validation.hostCPURange)
                try Validation.hostMemory(memoryBytes)
            }
            var fields: [(String, JSONValue)] = [("name", .string(name))]
            if let region { fields.append(("region", .string(region))) }
            fields += [
                ("cpus", .int(Int64(cpus))), ("memory_bytes", .int(memoryBytes)), ("labels", .map(labels)),
                ("request_id", .string(intent.resolvedRequestID)),
            ]
            let answer = try await client.client().call(.POST, "/v1/hosts", body: .object(fields), retrying: true)
            // What the node holds now, which for a retry of a request already applied is the host
            // as it is (added by that request, relabelled since perhaps), not these flags.
            guard let host = answer["host"], case .int(let heldCPUs)? = host["cpus"],
                case .int(let heldMemory)? = host["memory_bytes"]
            else {
                report(answer, json: intent.json) {
                    "host \(name) was added at log index \($0) and has since been removed"
                }
                return
            }
            let addedRegion = host["region"]?.stringValue ?? region ?? "?"
            report(answer, json: intent.json) {
                "added host \(name) (region \(addedRegion), \(formatCPUs(Int(heldCPUs))), \(formatBytes(heldMemory))) at log index \($0)"
            }
        }
    }

    struct Label: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a host's labels (unschedulable VMs are tried again).")

        @Argument(help: "The host's name.")
        var name: String

        @Option(name: .long, parsing: .singleValue, help: "A label, key=value (repeatable; they replace all others).")
        var label: [String] = []

        @Flag(name: .long, help: "Remove every label of the host (instead of --label).")
        var clear = false

        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func validate() throws {
            // (Without a word, no --label cleared every label, the host agent's hypervisor=kvm too.)
            if label.isEmpty && !clear {
                throw ValidationError(
                    "give the host's labels with --label KEY=VALUE (repeatable), or --clear to remove them all")
            }
            if !label.isEmpty && clear { throw ValidationError("--clear removes every label: give it without --label") }
        }

        func run() async throws {
            try usage { try Validation.name(name, what: "host") }
            let labels = try usage { try Validation.parseLabels(label) }
            let answer = try await client.client().call(
                .PUT, "/v1/hosts/\(name)/labels",
                body: .object([("labels", .map(labels)), ("request_id", .string(intent.resolvedRequestID))]),
                retrying: true
            )
            report(answer, json: intent.json) { "set the labels of host \(name) at log index \($0)" }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a host (refused while VMs are placed on it).")

        @Argument(help: "The host's name.")
        var name: String

        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(name, what: "host") }
            let answer = try await client.client().call(
                .DELETE, "/v1/hosts/\(name)?\(intent.requestIDQuery)", retrying: true)
            report(answer, json: intent.json) { "removed host \(name) at log index \($0)" }
        }
    }
}

/// Prints an intent's answer: JSON, or the sentence `sentence(logIndex)`.
func report(_ answer: JSONValue, json: Bool, _ sentence: (String) -> String) {
    if json {
        print(answer.serialized())
        return
    }
    var line = sentence(answer["log_index"]?.stringValue ?? "?")
    if answer["outcome"]?.stringValue == "duplicate" { line += " (a retry of a request already applied)" }
    print(line)
}
