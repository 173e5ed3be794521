import ArgumentParser

/// `dwcp status`: the node's id, region, role (and leader and term), log and applied indexes, data
/// directory, dwcp and views schema version, how its API and replication port are secured, and
/// where its tasks run.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a node's status.")

    @OptionGroup var client: ClientOptions

    @OptionGroup var output: JSONOutputOption

    func run() async throws {
        let status = try await client.client().call(.GET, "/v1/status")
        if output.json {
            print(status.serialized())
            return
        }
        var role = status["role"]?.stringValue ?? "?"
        if let term = status["term"]?.stringValue {
            role += ", leader \(status["leader"]?.stringValue ?? "none known"), term \(term)"
        }
        for (label, key) in [
            ("node", "node_id"), ("region", "region"), ("role", "role"), ("data dir", "data_dir"),
            ("first index", "first_index"),
            ("last index", "last_index"), ("commit index", "commit_index"), ("applied index", "applied_index"),
            ("version", "version"), ("views schema", "schema_version"), ("api TLS", "api_tls"),
            ("replication TLS", "replication_tls"), ("tasks run on", "tasks"),
        ] {
            let value = key == "role" ? role : status[key]?.stringValue ?? "?"
            print(Self.line(label, value))
        }
        if let damaged = status["views_damaged"]?.stringValue {
            print(Self.line("views damaged", "\(damaged): the next start rebuilds them from the log"))
        }
    }

    /// One line of the status: the label in a column of 16, then the value.
    static func line(_ label: String, _ value: String) -> String {
        label.padding(toLength: 16, withPad: " ", startingAt: 0) + value
    }
}
