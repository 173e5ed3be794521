import ArgumentParser
import Foundation
import Node
import Scheduler
import Store

/// `dwcp vm create|list|start|stop|delete|explain|console`.
struct VMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm", abstract: "Create, list, start, stop and delete VMs.",
        subcommands: [Create.self, List.self, Start.self, Stop.self, Delete.self, Explain.self, Console.self])

    struct Console: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a VM's serial console (served by the node that hosts the VM).")
        @Argument(help: "The VM's name.") var name: String
        @Flag(name: .long, help: "Keep printing new output until the VM stops (or Ctrl-C).") var follow = false
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(name, what: "VM") }
            let path = "/v1/vms/\(name)/console" + (follow ? "?follow=1" : "")
            try await client.client().streamBytes(path) { buffer in
                StandardStream.output.write(Array(buffer.readableBytesView))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a VM (or NAME-1 … NAME-N with --count); the scheduler places it.")

        @OptionGroup var spec: VMSpecOptions

        @Option(
            name: .long,
            help: "Commit only if nothing placement depends on changed since this log index (from 'dwcp plan').")
        var checkIndex: UInt64?

        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if let checkIndex, checkIndex > UInt64(Int64.max) {
                throw ValidationError("invalid --check-index \(checkIndex): a log index is at most \(Int64.max)")
            }
        }

        func run() async throws {
            var fields = try spec.body()
            fields.append(("request_id", .string(intent.resolvedRequestID)))
            if let checkIndex { fields.append(("check_index", .int(Int64(checkIndex)))) }
            let answer = try await client.client().call(.POST, "/v1/vms", body: .object(fields), retrying: true)
            if intent.json {
                print(answer.serialized())
                return
            }
            let rows: [JSONValue] = {
                if case .array(let vms)? = answer["vms"] { return vms }
                return [answer["vm"] ?? .null]
            }()
            let duplicate =
                answer["outcome"]?.stringValue == "duplicate" ? " (a retry of a request already applied)" : ""
            let names = Validation.vmNames(spec.name, count: spec.count)
            for (place, vm) in rows.enumerated() {
                guard vm != .null else {
                    // A retry of a request whose VM was deleted since: the answer holds no row.
                    // (A batch's answer gives the first VM's index only.)
                    let name = place < names.count ? names[place] : spec.name
                    let index = answer["log_index"]?.stringValue.map { " at log index \($0)" } ?? ""
                    print(
                        "VM \(name) was created\(spec.count == nil ? index : " by this request") and has since been deleted\(duplicate)"
                    )
                    continue
                }
                let state = vm["actual_state"]?.stringValue ?? "?"
                var line =
                    "created VM \(vm["name"]?.stringValue ?? spec.name) at log index \(vm["created_index"]?.stringValue ?? "?"): \(state)"
                if let host = vm["host"]?.stringValue { line += " on \(host)" }
                if state == "unschedulable", let reason = vm["reason"]?.stringValue { line += " (\(reason))" }
                print(line + duplicate)
            }
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show why a VM is where it is (or why it is nowhere).")
        @Argument(help: "The VM's name.") var name: String
        @OptionGroup var freshness: ReadConsistencyOption
        @OptionGroup var output: JSONOutputOption
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(name, what: "VM") }
            // (A read: sent again through a change of leader, as dwcp sql is.)
            let answer = try await client.client().callLeader(
                .GET, "/v1/vms/\(name)/explain?\(freshness.queryItem)", retrying: true)
            if output.json {
                print(answer.serialized())
                return
            }
            let host = answer["host"]?.stringValue
            var head = "VM \(name): \(answer["actual_state"]?.stringValue ?? "?")"
            if let host { head += " on \(host)" }
            if let index = answer["placed_index"]?.stringValue { head += " (placed at log index \(index))" }
            print(head)
            if let reason = answer["reason"]?.stringValue, !reason.isEmpty { print("reason: \(reason)") }
            if let explanation = answer["explanation"], explanation["policy"] != nil {
                print(describe(explanation))
            } else if host == nil && answer["actual_state"]?.stringValue == "pending" {
                print("not placed yet: the scheduler places a new VM once its record commits")
            } else {
                print("no placement explanation recorded")
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
                .DELETE, "/v1/vms/\(name)?\(intent.requestIDQuery)", retrying: true)
            report(answer, json: intent.json) { "deleted VM \(name) at log index \($0)" }
        }
    }
}

private func setDesiredState(_ name: String, action: String, intent: IntentOptions, client: ClientOptions) async throws
{
    try usage { try Validation.name(name, what: "VM") }
    let answer = try await client.client().call(
        .POST, "/v1/vms/\(name)/\(action)", body: .object([("request_id", .string(intent.resolvedRequestID))]),
        retrying: true)
    report(answer, json: intent.json) { index in
        let vm = answer["vm"]
        return "VM \(name): desired state \(vm?["desired_state"]?.stringValue ?? "?"), actual state "
            + "\(vm?["actual_state"]?.stringValue ?? "?") (log index \(index))"
    }
}

/// The flags that describe VMs to create, shared by `vm create` and `plan vm create`.
struct VMSpecOptions: ParsableArguments {
    @Argument(help: "The VM's name (a DNS label); with --count, the prefix of NAME-1 … NAME-N.")
    var name: String

    @Option(name: .long, help: "vCPUs, 1-64.")
    var cpus: Int

    @Option(name: .long, help: "Memory: 512MiB, 2GiB, 1.5GiB, or bytes.")
    var memory: String

    @Option(name: .long, help: "The VM's region (default: the node's).")
    var region: String?

    @Option(name: .long, help: "The guest image (default: builtin:hello).")
    var image: String?

    @Option(name: .long, parsing: .singleValue, help: "A label, key=value (repeatable).")
    var label: [String] = []

    @Option(name: .long, parsing: .singleValue, help: "A label the host must have, key=value (repeatable).")
    var require: [String] = []

    @Option(name: .long, help: "The VM's group, for anti-affinity and affinity.")
    var group: String?

    @Option(name: .long, help: "Keep VMs of the group on different hosts: hard (never share) or soft (prefer not).")
    var antiAffinity: String?

    @Option(name: .long, help: "Place on a host that runs a VM of this group.")
    var affinity: String?

    @Flag(name: .long, help: "Spread: prefer the emptiest host (default: bin-pack onto the fewest hosts).")
    var spread = false

    @Option(name: .long, help: "Create NAME-1 … NAME-N in one committed batch.")
    var count: Int?

    @Flag(name: .long, help: "Create stopped.")
    var stopped = false

    /// The JSON body fields, validated locally first.
    func body() throws -> [(String, JSONValue)] {
        let memoryBytes = try usage { try ByteSize.parse(memory) }
        let labels = try usage {
            let labels = try Validation.parseLabels(label)
            try Validation.guestLabels(labels)
            return labels
        }
        let required = try usage { try Validation.parseLabels(require) }
        let range = Validation.batchCountRange
        if let count, !range.contains(count) {
            throw CLIError(.usage, "--count must be \(range.lowerBound)-\(range.upperBound)")
        }
        try usage {
            // (The last of a batch's names is its longest: NAME-1000 is three characters past NAME-1.)
            try Validation.name(Validation.vmNames(name, count: count).last ?? name, what: "VM")
            if let region { try Validation.name(region, what: "region") }
            try Validation.cpus(cpus)
            try Validation.vmMemory(memoryBytes)
            try Validation.image(image ?? Validation.defaultImage, memoryBytes: memoryBytes)
            if let group { try Validation.name(group, what: "group") }
            if let affinity { try Validation.name(affinity, what: "affinity group") }
        }
        if let antiAffinity, AntiAffinity(rawValue: antiAffinity) == nil {
            throw CLIError(.usage, "invalid --anti-affinity '\(antiAffinity)': hard or soft")
        }
        if antiAffinity != nil && group == nil { throw CLIError(.usage, "--anti-affinity needs --group NAME") }
        var fields: [(String, JSONValue)] = [
            ("name", .string(name)), ("cpus", .int(Int64(cpus))), ("memory_bytes", .int(memoryBytes)),
            ("labels", .map(labels)), ("desired_state", .string(stopped ? "stopped" : "running")),
            ("require", .map(required)), ("policy", .string((spread ? PlacementPolicy.spread : .binpack).rawValue)),
        ]
        if let region { fields.append(("region", .string(region))) }
        if let image { fields.append(("image", .string(image))) }
        if let group { fields.append(("group", .string(group))) }
        if let antiAffinity { fields.append(("anti_affinity", .string(antiAffinity))) }
        if let affinity { fields.append(("affinity_group", .string(affinity))) }
        if let count { fields.append(("count", .int(Int64(count)))) }
        return fields
    }
}

/// A scheduling explanation for people: the filters, then the best candidates with their scores.
func describe(_ explanation: JSONValue) -> String {
    var lines: [String] = []
    let policy = explanation["policy"]?.stringValue ?? "?"
    let evaluated = explanation["hosts_evaluated"]?.stringValue ?? "?"
    lines.append("policy \(policy), \(evaluated) host\(evaluated == "1" ? "" : "s") evaluated")
    if case .object(let filters)? = explanation["filtered_out"] {
        let removed = filters.compactMap { name, count -> String? in
            guard let n = count.intValue, n > 0 else { return nil }
            return "\(n) by \(name)"
        }
        lines.append("filtered out: " + (removed.isEmpty ? "none" : removed.joined(separator: ", ")))
    }
    if let source = explanation["moved_off"]?.stringValue {
        lines.append("moved off \(source) by the batch's packing, which left \(source) empty")
    }
    if case .array(let candidates)? = explanation["candidates"], !candidates.isEmpty {
        lines.append("candidates (lower score wins):")
        for (i, c) in candidates.enumerated() {
            var terms: [String] = []
            if case .object(let breakdown)? = c["breakdown"] {
                terms = breakdown.map { "\($0) \($1.stringValue ?? "?")" }
            }
            let memoryAfter = c["free_memory_bytes_after"]?.intValue.map(formatBytes) ?? "?"
            let cpusAfter = c["free_cpus_after"]?.intValue.map { formatCPUs(Int($0)) } ?? "? CPUs"
            lines.append(
                "  \(i + 1). \(c["host"]?.stringValue ?? "?")  score \(c["score"]?.stringValue ?? "?")  "
                    + "(\(terms.joined(separator: ", ")))  free after: \(cpusAfter), \(memoryAfter)"
            )
        }
    } else {
        lines.append("candidates: none")
    }
    return lines.joined(separator: "\n")
}
