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
                comparing members. A member is named as different only against a digest more than \
                half of the members share. Exits 0 when every member answered with the same \
                digest, 2 when some differ, 1 when a member could not answer or nothing could be \
                compared.
                """)

        @Option(
            name: .long,
            help:
                "How long each member may take to commit, apply and hash the marker, in milliseconds (it answers 503 after)."
        )
        var timeoutMs = 10_000

        @Option(
            name: .long,
            help:
                "Ask the members again about the marker at this log index (one an earlier verify made) instead of making a new one."
        )
        var logIndex: Int64?

        @OptionGroup var output: JSONOutputOption

        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard (0...10_000).contains(timeoutMs) else {
                throw ValidationError("--timeout-ms must be 0 to 10000, not \(timeoutMs)")
            }
            if let logIndex, logIndex < 1 { throw ValidationError("--log-index must be 1 or more, not \(logIndex)") }
        }

        /// One member's answer: its views' schema and tables' digests, or why it has none.
        struct Answer {
            var id: String
            var schemaVersion = ""
            var tables: [String: (rows: Int64, sha256: String)]?
            var error: String?
            /// The whole digest, as one comparable string.
            var digest: String {
                (tables ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.sha256)" }.joined(separator: ",")
            }
        }

        func run() async throws {
            let asked = try client.client()
            var index = logIndex ?? 0
            if logIndex == nil {
                let marker = try await asked.callLeader(.POST, "/v1/cluster/verify")
                guard case .int(let proposed)? = marker["log_index"] else {
                    throw CLIError(.protocolError, "the node's answer names no log index: \(marker.serialized())")
                }
                index = proposed
            }
            let status = try await asked.call(.GET, "/v1/cluster?timeout_ms=0")
            var members: [(id: String, api: String?)] = []
            if status["replicated"] == .bool(true), case .array(let rows)? = status["members"] {
                members = rows.map { ($0["id"]?.stringValue ?? "?", $0["api"]?.stringValue) }
            } else {
                members = [(status["node_id"]?.stringValue ?? asked.address, asked.address)]
            }
            guard !members.isEmpty else {
                throw CLIError(.protocolError, "\(asked.address) names no members: \(status.serialized())")
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
            return Answer(id: id, schemaVersion: body["schema_version"]?.stringValue ?? "", tables: tables)
        }

        /// Prints each member's verdict against the digest more than half of the members share,
        /// and fails when one differs or no such majority exists (status 2), or when a member
        /// could not answer or nothing could be compared (status 1).
        func report(_ answers: [Answer], at index: Int64) throws {
            let hashed = answers.filter { $0.tables != nil }
            let groups = Dictionary(grouping: hashed, by: \.digest)
            // Only a digest most members share says which views are wrong.
            let majority = groups.values.first { $0.count * 2 > answers.count }
            let reference = majority?.first?.tables
            let versions = Set(hashed.map(\.schemaVersion))
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
                let rows = tables.values.reduce(0) { $0 + $1.rows }
                fields.append(("schema_version", .string(answer.schemaVersion)))
                if let reference, versions.count == 1 {
                    let names = Set(tables.keys).union(reference.keys).sorted()
                    let differ = names.filter { tables[$0]?.sha256 != reference[$0]?.sha256 }
                    fields.append(("same", .bool(differ.isEmpty)))
                    fields.append(("differing_tables", .array(differ.map { .string($0) })))
                    if differ.isEmpty {
                        lines.append((answer.id, "same (\(tables.count) tables, \(rows) rows)"))
                    } else {
                        differing.append(answer.id)
                        let what = differ.map { name in
                            "\(name) (rows: \(tables[name].map { "\($0.rows)" } ?? "no table") here, \(reference[name].map { "\($0.rows)" } ?? "no table") on the others)"
                        }
                        lines.append((answer.id, "DIFFERENT: " + what.joined(separator: ", ")))
                    }
                } else {
                    let group = (groups[answer.digest] ?? []).map(\.id).filter { $0 != answer.id }
                    let alike =
                        group.isEmpty ? "alike with no other member" : "alike with \(group.joined(separator: ", "))"
                    lines.append(
                        (answer.id, "schema \(answer.schemaVersion), \(tables.count) tables, \(rows) rows: \(alike)"))
                }
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
            }
            if output.json {
                print(JSONValue.object([("log_index", .int(index)), ("members", .array(json))]).serialized())
            } else {
                let alone = answers.count == 1 ? " (one member: nothing to compare them with)" : ""
                print("the members' views at log index \(index)\(alone):")
                for (id, verdict) in lines {
                    print(id.padding(toLength: max(8, id.count + 1), withPad: " ", startingAt: 0) + verdict)
                }
            }
            let unanswered = answers.filter { $0.tables == nil }.map(\.id)
            let again = "dwcp cluster verify --log-index \(index)"
            if versions.count > 1 {
                throw CLIError(
                    .unreachable,
                    "the members' views are of different schema versions (\(versions.sorted().joined(separator: ", "))), so their tables differ by design: verify once every member runs the same dwcp"
                )
            }
            if !differing.isEmpty {
                let which = differing.count == 1 ? "that member" : "each of them"
                throw CLIError(
                    .differs,
                    "the views of \(differing.joined(separator: ", ")) differ from those most members share at log index \(index): stop \(which) and remove its DATA/views.sqlite, and it rebuilds them from its latest snapshot and its log as it starts (if they differ again, the damage is in that snapshot: remove the member, empty its data directory and add it again)"
                )
            }
            if reference == nil, groups.count > 1 {
                throw CLIError(
                    .differs,
                    "the members' views differ at log index \(index) and no digest is shared by more than half of the \(answers.count) members, so which are wrong cannot be told\(unanswered.isEmpty ? "" : ": ask again once \(unanswered.joined(separator: ", ")) can answer (\(again))")"
                )
            }
            if !unanswered.isEmpty {
                let compared =
                    reference != nil
                    ? "the \(hashed.count) that answered agree" : "fewer than half of the members answered"
                throw CLIError(
                    .unreachable,
                    "no digest from \(unanswered.joined(separator: ", ")) (\(compared)): ask again with \(again)")
            }
        }
    }
}
