import ArgumentParser
import Node
import Store

extension HostCommand {
    /// `dwcp host evacuate`: a `host.evacuated` intent, then the names of the VMs it moved (the
    /// `vm_events` its record wrote).
    struct Evacuate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Place the VMs of a host that is down anew, on other hosts (they start there from their images).",
            discussion: """
                Refused while the host is ready: its VMs run there. Its host agent, back, ends the \
                VMs it ran. A host that is not ready may still run its VMs (a network partition): \
                evacuate a host you know to be down, or cut off.
                """)

        @Argument(help: "The host's name.")
        var name: String

        @OptionGroup var intent: IntentOptions
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(name, what: "host") }
            let client = try client.client()
            let answer = try await client.call(
                .POST, "/v1/hosts/\(name)/evacuate", body: .object([("request_id", .string(intent.resolvedRequestID))]),
                retrying: true)
            guard !intent.json, let index = answer["log_index"]?.intValue else {
                return report(answer, json: intent.json) { "evacuated host \(name) at log index \($0)" }
            }
            // Which VMs it moved: the events its record wrote.
            let moved = try await client.callLeader(
                .POST, "/v1/sql",
                body: .object([
                    (
                        "query",
                        .string(
                            "SELECT vm FROM vm_events WHERE log_index = \(index) AND to_state = 'pending' ORDER BY vm")
                    )
                ]), retrying: true)
            var names: [String] = []
            if case .array(let rows)? = moved["rows"] {
                for case .array(let values) in rows { if let vm = values.first?.stringValue { names.append(vm) } }
            }
            report(answer, json: false) {
                let what =
                    names.isEmpty
                    ? "no VMs were placed on it"
                    : "\(names.count) VM\(names.count == 1 ? "" : "s") to be placed anew elsewhere (\(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", ..." : ""))"
                return "evacuated host \(name) at log index \($0): \(what)"
            }
        }
    }
}
