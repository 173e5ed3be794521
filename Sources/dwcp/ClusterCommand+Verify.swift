import ArgumentParser
import Node
import Store

extension ClusterCommand {
    /// `dwcp cluster verify`: the leader puts a marker in the log; every member hashes its views as
    /// they stand at the marker's index; the digests are compared, table by table.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that every member's views hold the same rows: each hashes them at one log index.",
            discussion: """
                SQLite's integrity check, which a node runs as it starts, finds damage that breaks \
                the file's structure; a changed value that breaks nothing is found only by \
                comparing members. Exits 0 when every member answered with the same digest, 2 when \
                some differ (the tables that differ are named), 1 when a member could not answer.
                """)

        @Option(
            name: .long,
            help: "How long each member may take to apply the marker and hash its views, in milliseconds.")
        var timeoutMs = 10_000

        @OptionGroup var output: JSONOutputOption

        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard (0...10_000).contains(timeoutMs) else {
                throw ValidationError("--timeout-ms must be 0 to 10000, not \(timeoutMs)")
            }
        }

        /// One member's answer: its tables' digests, or why it has none.
        struct Answer {
            var id: String
            var tables: [String: (rows: Int64, sha256: String)]?
            var error: String?
            var digest: String {
                (tables ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.sha256)" }.joined(separator: ",")
            }
        }

        func run() async throws {
            let asked = try client.client()
            let marker = try await asked.callLeader(.POST, "/v1/cluster/verify")
            guard case .int(let index)? = marker["log_index"] else {
                throw CLIError(.protocolError, "the node's answer names no log index: \(marker.serialized())")
            }
            let status = try await asked.call(.GET, "/v1/cluster?timeout_ms=0")
            var members: [(id: String, api: String?)] = []
            if status["replicated"] == .bool(true), case .array(let rows)? = status["members"] {
                members = rows.map { ($0["id"]?.stringValue ?? "?", $0["api"]?.stringValue) }
            } else {
                members = [(status["node_id"]?.stringValue ?? asked.address, asked.address)]
            }
            let path = "/v1/views/digest?log_index=\(index)&timeout_ms=\(timeoutMs)"
            let tls = asked.tls
            let answers = await withTaskGroup(of: Answer.self) { group in
                for (id, api) in members {
                    group.addTask {
                        guard let api else {
                            return Answer(id: id, error: "its API address is not known (see dwcp cluster status)")
                        }
                        do {
                            return Self.answer(id, try await NodeClient(address: api, tls: tls).call(.GET, path))
                        } catch {
                            return Answer(id: id, error: "\(error)")
                        }
                    }
                }
                var answers: [Answer] = []
                for await answer in group { answers.append(answer) }
                return answers.sorted { $0.id < $1.id }
            }
            try report(answers, at: index)
        }

        static func answer(_ id: String, _ body: JSONValue) -> Answer {
            guard case .array(let rows)? = body["tables"] else {
                return Answer(id: id, error: "its answer holds no tables: \(body.serialized())")
            }
            var tables: [String: (rows: Int64, sha256: String)] = [:]
            for row in rows {
                guard let name = row["table"]?.stringValue, case .int(let count)? = row["rows"],
                    let sha = row["sha256"]?.stringValue
                else { return Answer(id: id, error: "its answer has a malformed table: \(row.serialized())") }
                tables[name] = (count, sha)
            }
            return Answer(id: id, tables: tables)
        }

        /// Prints each member's verdict against the digest most members share, and fails when
        /// one differs (status 2) or could not answer (status 1).
        func report(_ answers: [Answer], at index: Int64) throws {
            let digests = answers.filter { $0.tables != nil }.map(\.digest)
            let common = Dictionary(grouping: digests, by: { $0 }).max { $0.value.count < $1.value.count }?.key
            let reference = answers.first { $0.tables != nil && $0.digest == common }?.tables ?? [:]
            var differing: [String] = []
            var lines: [(String, String)] = []
            var json: [JSONValue] = []
            for answer in answers {
                var fields: [(String, JSONValue)] = [("id", .string(answer.id))]
                guard let tables = answer.tables else {
                    lines.append((answer.id, "no digest: \(answer.error ?? "-")"))
                    fields.append(("error", .string(answer.error ?? "")))
                    json.append(.object(fields))
                    continue
                }
                let names = Set(tables.keys).union(reference.keys).sorted()
                let differ = names.filter { tables[$0]?.sha256 != reference[$0]?.sha256 }
                fields.append(("same", .bool(differ.isEmpty)))
                fields.append(("differing_tables", .array(differ.map { .string($0) })))
                fields.append(
                    (
                        "tables",
                        .array(
                            tables.sorted { $0.key < $1.key }.map {
                                .object([
                                    ("table", .string($0.key)), ("rows", .int($0.value.rows)),
                                    ("sha256", .string($0.value.sha256)),
                                ])
                            })
                    ))
                json.append(.object(fields))
                if differ.isEmpty {
                    let rows = tables.values.reduce(0) { $0 + $1.rows }
                    lines.append((answer.id, "same (\(tables.count) tables, \(rows) rows)"))
                } else {
                    differing.append(answer.id)
                    let what = differ.map { name in
                        "\(name) (rows: \(tables[name].map { "\($0.rows)" } ?? "no table") here, \(reference[name].map { "\($0.rows)" } ?? "no table") on the others)"
                    }
                    lines.append((answer.id, "DIFFERENT: " + what.joined(separator: ", ")))
                }
            }
            if output.json {
                print(JSONValue.object([("log_index", .int(index)), ("members", .array(json))]).serialized())
            } else {
                print(
                    "the members' views at log index \(index)\(answers.count == 1 ? " (one member: nothing to compare them with)" : ""):"
                )
                for (id, verdict) in lines {
                    print(id.padding(toLength: max(8, id.count + 1), withPad: " ", startingAt: 0) + verdict)
                }
            }
            if !differing.isEmpty {
                throw CLIError(
                    .differs,
                    "the views of \(differing.joined(separator: ", ")) differ from the others' at log index \(index): stop that member and remove its DATA/views.sqlite, and it rebuilds them from its latest snapshot and its log as it starts (if they differ again, the damage is in that snapshot: remove the member, empty its data directory and add it again)"
                )
            }
            let unanswered = answers.filter { $0.tables == nil }.map(\.id)
            if !unanswered.isEmpty {
                throw CLIError(
                    .unreachable, "no digest from \(unanswered.joined(separator: ", ")): the others' agree; ask again")
            }
        }
    }
}
