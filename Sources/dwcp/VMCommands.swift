import ArgumentParser
import Node
import Scheduler
import Store

/// `dwcp vm create|start|stop|delete`.
struct VMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm", abstract: "Create, start, stop and delete VMs.",
        subcommands: [Create.self, Start.self, Stop.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a VM; the scheduler places it.")

        @Argument(help: "The VM's name (a DNS label).")
        var name: String

        @Option(name: .long, help: "vCPUs, 1-256.")
        var cpus: Int

        @Option(name: .long, help: "Memory: 512MiB, 2GiB, 1.5GiB, or bytes.")
        var memory: String

        @Option(name: .long, help: "The VM's region (default: the node's).")
        var region: String?

        @Option(name: .long, help: "The guest image (default: builtin:hello).")
        var image: String?

        @Option(name: .long, parsing: .singleValue, help: "A label, key=value (repeatable).")
        var label: [String] = []

        @Flag(name: .long, help: "Create it stopped.")
        var stopped = false

        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            let memoryBytes = try usage { try ByteSize.parse(memory) }
            let labels = try usage { try Validation.parseLabels(label) }
            try usage {
                try Validation.name(name, what: "VM")
                if let region { try Validation.name(region, what: "region") }
                try Validation.cpus(cpus)
                try Validation.vmMemory(memoryBytes)
                if let image { try Validation.image(image) }
            }
            var fields: [(String, JSONValue)] = [
                ("name", .string(name)), ("cpus", .int(Int64(cpus))), ("memory_bytes", .int(memoryBytes)),
                ("labels", .map(labels)), ("desired_state", .string(stopped ? "stopped" : "running")),
                ("request_id", .string(intent.resolvedRequestID)),
            ]
            if let region { fields.append(("region", .string(region))) }
            if let image { fields.append(("image", .string(image))) }
            let answer = try await client.client().call(.POST, "/v1/vms", body: .object(fields), retries: 3)
            report(answer, json: intent.json) { index in
                let vm = answer["vm"]
                let state = vm?["actual_state"]?.stringValue ?? "?"
                var line = "created VM \(name) at log index \(index): \(state)"
                if let host = vm?["host"]?.stringValue { line += " on \(host)" }
                if state == "unschedulable", let reason = vm?["reason"]?.stringValue { line += " (\(reason))" }
                return line
            }
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a VM's desired state to running.")
        @Argument(help: "The VM's name.") var name: String
        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await setDesiredState(name, action: "start", intent: intent, client: client)
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a VM's desired state to stopped.")
        @Argument(help: "The VM's name.") var name: String
        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await setDesiredState(name, action: "stop", intent: intent, client: client)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a VM; its capacity returns to its host.")
        @Argument(help: "The VM's name.") var name: String
        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(name, what: "VM") }
            let answer = try await client.client().call(
                .DELETE, "/v1/vms/\(name)?request_id=\(intent.resolvedRequestID)", retries: 3)
            report(answer, json: intent.json) { "deleted VM \(name) at log index \($0)" }
        }
    }
}

private func setDesiredState(_ name: String, action: String, intent: IntentOptions, client: ClientOptions) async throws
{
    try usage { try Validation.name(name, what: "VM") }
    let answer = try await client.client().call(
        .POST, "/v1/vms/\(name)/\(action)", body: .object([("request_id", .string(intent.resolvedRequestID))]),
        retries: 3)
    report(answer, json: intent.json) { index in
        let vm = answer["vm"]
        return "VM \(name): desired state \(vm?["desired_state"]?.stringValue ?? "?"), actual state "
            + "\(vm?["actual_state"]?.stringValue ?? "?") (log index \(index))"
    }
}
