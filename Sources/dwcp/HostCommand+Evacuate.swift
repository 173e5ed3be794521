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
            // Which VMs it moved: the events its record wrote (the first 8 by name, and how many).
            // The evacuation stands whatever becomes of this read: a failure only leaves them unnamed.
            let query =
                "SELECT count(*) OVER () AS n, vm FROM vm_events WHERE log_index = \(index) AND to_state = 'pending' ORDER BY vm LIMIT 8"
            var (count, names) = (Int64(0), [String]())
            do {
                let moved = try await client.callLeader(
                    .POST, "/v1/sql", body: .object([("query", .string(query))]), retrying: true)
                if case .array(let rows)? = moved["rows"] {
                    for case .array(let values) in rows where values.count == 2 {
                        count = values[0].intValue ?? count
                        if let vm = values[1].stringValue { names.append(vm) }
                    }
                }
            } catch {
                report(answer, json: false) {
                    "evacuated host \(name) at log index \($0); which VMs it moved could not be read (\(error)): dwcp sql \"SELECT vm FROM vm_events WHERE log_index = \($0) AND to_state = 'pending'\""
                }
                return
            }
            report(answer, json: false) {
                let what =
                    names.isEmpty
                    ? "no VMs were placed on it"
                    : "\(count) VM\(count == 1 ? "" : "s") to be placed anew elsewhere (\(names.joined(separator: ", "))\(count > Int64(names.count) ? ", ..." : ""))"
                return "evacuated host \(name) at log index \($0): \(what)"
            }
        }
    }
}
