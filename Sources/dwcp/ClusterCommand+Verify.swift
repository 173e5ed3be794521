import ArgumentParser
import Foundation
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
                comparing members. The digests are compared table by table: a member is named \
                with a table when its digest of it differs from the one more than half of the \
                members share. Exits 0 when every member answered with the same digests, 2 when a \
                member differs or a table has no majority, 1 when a member could not answer or \
                the members run different schema versions.
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

        typealias Answer = ViewsComparison.Answer

        func run() async throws {
            let asked = try client.client()
            var index = logIndex ?? 0
            if logIndex == nil { index = try await proposeMarker(through: asked) }
            // An index asked for by hand is checked against the highest commit index any member
            // reports (the asked member's own may lag the leader's).
            let status = try await asked.call(.GET, "/v1/cluster?timeout_ms=\(logIndex == nil ? 0 : 1000)")
            if logIndex != nil {
                var reported: [JSONValue] = [status]
                if case .array(let rows)? = status["members"] { reported += rows }
                let committed = reported.compactMap { row -> Int64? in
                    if case .int(let index)? = row["commit_index"] { return index } else { return nil }
                }.max()
                if let committed, index > committed {
                    // (Exit 1, as for a name that does not exist: the index is sound, the region has
                    // not got there.)
                    throw CLIError(
                        .refused,
                        "log index \(index) is past the region's commit index \(committed): no marker is there (run dwcp cluster verify without --log-index)"
                    )
                }
            }
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
            // The member answers within --timeout-ms; a member that does not (it is stopped) is
            // given up on a little after.
            let wait = Duration.milliseconds(timeoutMs) + .seconds(2)
            let tls = asked.tls
            let answers = await withTaskGroup(of: Answer.self) { group in
                for (id, api) in members {
                    group.addTask {
                        guard let api else {
                            return Answer(id: id, error: "its API address is not known (see dwcp cluster status)")
                        }
                        do {
                            var member = try NodeClient(address: api, tls: tls)
                            member.advisesWhenUnreachable = false
                            return Answer(id: id, digestAnswer: try await member.call(.GET, path, timeout: wait))
                        } catch let error as CLIError {
                            // 404: no digest and none will come; 500: its views could not be read.
                            // Neither is helped by asking about this marker again.
                            var message = error.message
                            if message.hasPrefix("no such route") {
                                message = "it runs a dwcp without verify (\(message))"
                            }
                            return Answer(
                                id: id, error: message, gone: error.httpStatus == 404 || error.httpStatus == 500)
                        } catch {
                            return Answer(id: id, error: "\(error)")
                        }
                    }
                }
                var answers: [Answer] = []
                for await answer in group { answers.append(answer) }
                return answers.sorted { $0.id < $1.id }
            }
            try report(ViewsComparison(logIndex: UInt64(index), answers: answers))
        }

        /// Asks the leader (through `asked`) for a marker; returns its index. A marker is harmless
        /// to propose twice, so a leader that went away meanwhile (a member relaying to it answers
        /// 503 after 10 s) is asked again, for up to 30 s.
        func proposeMarker(through asked: NodeClient) async throws -> Int64 {
            let start = ContinuousClock.now
            while true {
                do {
                    let marker = try await asked.callLeader(.POST, "/v1/cluster/verify", retrying: true)
                    guard case .int(let index)? = marker["log_index"] else {
                        throw CLIError(.protocolError, "the node's answer names no log index: \(marker.serialized())")
                    }
                    return index
                } catch let error as CLIError
                    where error.httpStatus == 503 && start.duration(to: .now) < .seconds(30)
                {
                    StandardStream.error.write("dwcp: no marker yet (\(error.message)); asking again\n")
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
        }

        /// Prints what `comparison` says of each member (or, with --json, all of it), and fails
        /// with status 2 when a member differs or a table has no majority, 1 when a member could
        /// not answer, nothing could be compared, or the members run different schema versions.
        func report(_ comparison: ViewsComparison) throws {
            let index = comparison.logIndex
            let answers = comparison.answers
            if output.json {
                print(Self.json(comparison).serialized())
            } else {
                let alone = answers.count == 1 ? " (one member: nothing to compare them with)" : ""
                print("the members' views at log index \(index)\(alone):")
                for answer in answers {
                    let id = answer.id
                    print(
                        id.padding(toLength: max(8, id.count + 1), withPad: " ", startingAt: 0)
                            + Self.line(answer, in: comparison))
                }
            }
            if !comparison.comparable {
                throw CLIError(
                    .unreachable,
                    "the members' views are of different schema versions (\(comparison.schemaVersions.joined(separator: ", "))), so their tables differ by design: verify once every member runs the same dwcp"
                )
            }
            var problems: [String] = []
            let differing = comparison.differingMembers.map(\.id)
            if !differing.isEmpty {
                let which = differing.count == 1 ? "that member" : "each of them"
                problems.append(
                    "the views of \(differing.joined(separator: ", ")) differ from those most members share at log index \(index): stop \(which) and remove its DATA/views.sqlite, and it rebuilds them from its latest snapshot and its log as it starts (if they differ again, the damage is in that snapshot: remove the member, empty its data directory and add it again)"
                )
            }
            let unanswered = comparison.unanswered
            let split = comparison.tablesWithoutMajority
            if !split.isEmpty {
                let others =
                    unanswered.isEmpty
                    ? ""
                    : ": \(unanswered.map(\.id).joined(separator: ", ")) did not answer, and may settle it (dwcp cluster verify --log-index \(index) once it can)"
                problems.append(
                    "no digest of \(split.joined(separator: ", ")) is shared by more than half of the \(answers.count) members (\(comparison.splitDescription)), so which member's is wrong cannot be told\(others)"
                )
            }
            if !problems.isEmpty { throw CLIError(.differs, problems.joined(separator: "; ")) }
            if !unanswered.isEmpty {
                let ids = unanswered.map(\.id).joined(separator: ", ")
                let compared =
                    answers.count == 1
                    ? "the only member"
                    : comparison.majorityAnswered
                        ? "the \(comparison.answered.count) that answered agree"
                        : "at most half of the members answered"
                let next =
                    unanswered.allSatisfy(\.gone)
                    ? "run dwcp cluster verify again, without --log-index (they will never have a digest of this marker)"
                    : "ask again with dwcp cluster verify --log-index \(index), or run a new verify"
                throw CLIError(.unreachable, "no digest from \(ids) (\(compared)): \(next)")
            }
        }

        /// One member's line: its verdict, in words.
        static func line(_ answer: Answer, in comparison: ViewsComparison) -> String {
            let tables = answer.tables ?? [:]
            let rows = tables.values.reduce(0) { $0 + $1.rows }
            switch comparison.verdict(of: answer) {
            case .unanswered(let why):
                return "no digest: \(why)"
            case .otherSchemas:
                return "schema \(answer.schemaVersion), \(tables.count) tables, \(rows) rows"
            case .differs(let names):
                let what = names.map { name in
                    let here = tables[name].map { "\($0.rows)" } ?? "no table"
                    let others = comparison.reference(of: name).map { "\($0.rows)" } ?? "no table"
                    return "\(name) (rows: \(here) here, \(others) on the others)"
                }
                return "DIFFERENT: " + what.joined(separator: ", ")
            case .noMajority(let names):
                return "no majority on \(names.joined(separator: ", "))"
            case .uncompared:
                return "\(tables.count) tables, \(rows) rows: too few members answered to compare them"
            case .same:
                return "same (\(tables.count) tables, \(rows) rows)"
            }
        }

        /// `--json`: the verdict, and every member's digests.
        static func json(_ comparison: ViewsComparison) -> JSONValue {
            let members = comparison.answers.map { answer -> JSONValue in
                var fields: [(String, JSONValue)] = [("id", .string(answer.id))]
                guard let tables = answer.tables else {
                    return .object(fields + [("error", .string(answer.error ?? ""))])
                }
                let verdict = comparison.verdict(of: answer)
                var differing: [String] = []
                if case .differs(let names) = verdict { differing = names }
                fields.append(("schema_version", .string(answer.schemaVersion)))
                fields.append(("same", .bool(verdict == .same)))
                fields.append(("differing_tables", .array(differing.map { .string($0) })))
                fields.append(("tables", .array(tables.values.sorted { $0.table < $1.table }.map(\.json))))
                return .object(fields)
            }
            return .object([
                ("log_index", .int(Int64(comparison.logIndex))), ("same", .bool(comparison.agree)),
                ("differing_members", .array(comparison.differingMembers.map { .string($0.id) })),
                ("tables_without_majority", .array(comparison.tablesWithoutMajority.map { .string($0) })),
                ("members", .array(members)),
            ])
        }
    }
}
