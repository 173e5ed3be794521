import ArgumentParser
import Node
import Store

extension HostCommand {
    /// `dwcp host evacuate`: a `host.evacuated` intent; the answer names the VMs it moved.
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
            let answer = try await client.client().call(
                .POST, "/v1/hosts/\(name)/evacuate", body: .object([("request_id", .string(intent.resolvedRequestID))]),
                retrying: true)
            report(answer, json: intent.json) {
                var names: [String] = []
                if case .array(let vms)? = answer["vms"] { names = vms.compactMap(\.stringValue) }
                let what =
                    names.isEmpty
                    ? "no VMs were placed on it"
                    : "\(names.count) VM\(names.count == 1 ? "" : "s") to be placed anew elsewhere (\(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", ..." : ""))"
                return "evacuated host \(name) at log index \($0): \(what)"
            }
        }
    }
}
