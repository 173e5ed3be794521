import ArgumentParser
import Node
import Store

/// `dwcp cluster status|add-member|promote|remove-member|transfer-leader|verify`: the region's Raft group.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Show and change the region's replication group.",
        subcommands: [
            ClusterStatus.self, AddMember.self, Promote.self, RemoveMember.self, TransferLeader.self, Verify.self,
        ])

    struct ClusterStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Every member as it reports itself; asked of the leader, each member's lag too.")

        @OptionGroup var client: ClientOptions

        @Option(name: .long, help: "How long to wait for each member's answer, in milliseconds (0: ask none).")
        var timeoutMs = 1000

        @OptionGroup var output: JSONOutputOption

        func validate() throws {
            guard (0...10_000).contains(timeoutMs) else {
                throw ValidationError("--timeout-ms must be 0 to 10000, not \(timeoutMs)")
            }
        }

        func run() async throws {
            let asked = try client.client()
            var status = try await asked.call(.GET, "/v1/cluster?timeout_ms=\(timeoutMs)")
            // The leader's last own verify of the members' views (a member that does not lead
            // sends the question on to it); not asked with --timeout-ms 0.
            var verification: Result<JSONValue, CLIError>?
            if status["replicated"] == .bool(true), timeoutMs > 0 {
                do {
                    // Bounded like the members' answers: an outage is when status is asked most.
                    verification = .success(
                        try await asked.call(
                            .GET, "/v1/cluster/verify/last", timeout: .milliseconds(timeoutMs) + .seconds(2)))
                } catch let error as CLIError {
                    verification = .failure(error)
                }
            }
            if output.json {
                if case .object(var fields) = status {
                    switch verification {
                    case .success(let answer)?: fields.append(("verification", answer))
                    case .failure(let error)?: fields.append(("verification_error", .string(error.message)))
                    case nil: break
                    }
                    status = .object(fields)
                }
                print(status.serialized())
                return
            }
            func field(_ object: JSONValue, _ key: String) -> String { object[key]?.stringValue ?? "-" }
            guard status["replicated"] == .bool(true) else {
                print(
                    "\(field(status, "node_id")) is a single-node region (no replication), dwcp \(field(status, "version"))"
                )
                return
            }
            let removed = status["removed"] == .bool(true)
            let outside =
                removed
                ? " (removed from the region: it takes no intents or reads; the members below are as it last knew them, so ask one of them)"
                : status["role"]?.stringValue == "not a member"
                    ? " (not a member of the region: removed, or not yet added with add-member)" : ""
            let leader = removed ? "" : ", leader \(status["leader"]?.stringValue ?? "none")"
            print(
                "asked \(field(status, "node_id"))\(outside): region \(field(status, "region")) (id \(status["region_id"]?.stringValue ?? "not known yet"))\(leader)"
            )
            let widths = [8, 22, 22, 13, 6, 10, 10, 10, 8, 0]
            func line(_ cells: [String]) -> String {
                var text = zip(cells, widths).map {
                    $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0)
                }.joined()
                // (No line ends in a space.)
                while text.hasSuffix(" ") { text.removeLast() }
                return text
            }
            print(line(["ID", "ADDRESS", "API", "ROLE", "TERM", "LAST", "COMMIT", "APPLIED", "LAG", "VERSION"]))
            guard case .array(let members) = status["members"] else { return }
            for member in members {
                // A member not asked, or that did not answer, has no term or indexes; the leader
                // still knows its lag.
                let region = status["region"]?.stringValue
                let other = member["region"]?.stringValue.flatMap { $0 == region ? nil : $0 }
                let note =
                    other.map { "started with --region \($0), not \(region ?? "-"): its messages are ignored" }
                    ?? member["other_founding"]?.stringValue.map { _ in
                        "started with another --peer list than \(field(status, "node_id")): its messages are ignored"
                    }
                    ?? member["lost_log"]?.stringValue
                    ?? (member["asked"] == .bool(false)
                        ? "(not asked)"
                        : member["reachable"] == .bool(false)
                            ? "unreachable: \(field(member, "error"))"
                            : "\(field(member, "version")) (schema \(field(member, "schema_version")))")
                print(
                    line(
                        ["id", "address", "api", "role", "term", "last_index", "commit_index", "applied_index", "lag"]
                            .map {
                                field(member, $0)
                            } + [note]))
            }
            switch verification {
            case .success(let answer)?: print("views: " + Self.describe(verification: answer))
            case .failure(let error)?: print("views: the leader's last verify is not known (\(error.message))")
            case nil: break
            }
        }

        /// The leader's last own verify (`GET /v1/cluster/verify/last`), in a line.
        static func describe(verification answer: JSONValue) -> String {
            func strings(_ key: String) -> [String] {
                guard case .array(let items)? = answer[key] else { return [] }
                return items.compactMap(\.stringValue)
            }
            func int(_ key: String) -> Int64? { if case .int(let value)? = answer[key] { value } else { nil } }
            let every = answer["every"]?.stringValue
            guard answer["verified"] == .bool(true) else {
                guard let every else {
                    return
                        "not verified on their own (the leader runs with --verify-every 0; dwcp cluster verify checks now)"
                }
                return "not verified yet (the leader verifies every \(every); dwcp cluster verify checks now)"
            }
            var when = ""
            if let seconds = int("seconds_ago") {
                let ago =
                    seconds < 120 ? "\(seconds) s" : seconds < 7_200 ? "\(seconds / 60) min" : "\(seconds / 3_600) h"
                when += "\(ago) ago "
            }
            when += "by \(answer["verified_by"]?.stringValue ?? "-")" + (every.map { ", every \($0)" } ?? "")
            guard let index = int("log_index") else {
                return "the last verify (\(when)) made no marker: \(answer["error"]?.stringValue ?? "-")"
            }
            when = "verified " + when
            var differing: [String] = []
            if case .array(let members)? = answer["differences"] {
                differing = members.map { member in
                    let tables: [String]
                    if case .array(let items)? = member["tables"] {
                        tables = items.compactMap(\.stringValue)
                    } else {
                        tables = []
                    }
                    return "\(member["id"]?.stringValue ?? "?") (\(tables.joined(separator: ", ")))"
                }
            }
            var unanswered: [String] = []
            if case .array(let members)? = answer["unanswered"] {
                unanswered = members.map { "\($0["id"]?.stringValue ?? "?") (\($0["error"]?.stringValue ?? "-"))" }
            }
            let split = strings("tables_without_majority")
            var parts: [String] = []
            switch answer["outcome"]?.stringValue {
            case "same":
                let members = int("members") ?? 0
                parts.append(
                    members == 1
                        ? "hashed at log index \(index), with no other member to compare them with"
                        : "the same on all \(members) members at log index \(index)")
            case "not_compared":
                parts.append(
                    "not compared at log index \(index): the members run schema versions \(strings("schema_versions").joined(separator: ", "))"
                )
            case "differs", "incomplete":
                if !differing.isEmpty { parts.append("DIFFERENT on \(differing.joined(separator: ", "))") }
                if !split.isEmpty { parts.append("no majority on \(split.joined(separator: ", "))") }
                if !unanswered.isEmpty { parts.append("no digest from \(unanswered.joined(separator: ", "))") }
                if parts.isEmpty { parts.append(answer["outcome"]?.stringValue ?? "-") }
                parts[0] += " at log index \(index)"
                if differing.isEmpty && split.isEmpty {
                    let answered = int("answered") ?? 0
                    parts.append(
                        answered * 2 > int("members") ?? 0
                            ? "the \(answered) that answered agree" : "too few answered to compare their views")
                }
            default:
                // An outcome of a later dwcp.
                parts.append("\(answer["outcome"]?.stringValue ?? "no outcome") at log index \(index)")
            }
            let advice = differing.isEmpty && split.isEmpty ? "" : "; dwcp cluster verify shows every member's tables"
            return parts.joined(separator: "; ") + " (\(when))" + advice
        }
    }

    struct AddMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-member", abstract: "Add a member, ID@HOST:PORT (start it with `dwcp serve --join`).")

        @Argument(help: "ID@HOST:PORT of the new member's replication port.")
        var member: String

        @Flag(name: .long, help: "Add it as a learner (it receives the log but does not vote); promote it later.")
        var learner = false

        @OptionGroup var output: JSONOutputOption

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let (id, address) = try usage { try parsePeer(member, what: "member") }
            let answer = try await client.client().callLeader(
                .POST, "/v1/cluster/members",
                body: .object([("id", .string(id)), ("address", .string(address)), ("learner", .bool(learner))]))
            report(answer, json: output.json) { "added \(id) as a \(learner ? "learner" : "voter") at index \($0)" }
            if !output.json, let warning = answer["warning"]?.stringValue {
                StandardStream.error.write("dwcp: warning: \(warning)\n")
            }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a learner a voter.")

        @Argument(help: "The learner's id.")
        var id: String

        @OptionGroup var output: JSONOutputOption

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(id, what: "node") }
            let answer = try await client.client().callLeader(.POST, "/v1/cluster/members/\(id)/promote")
            report(answer, json: output.json) { "promoted \(id) at index \($0)" }
        }
    }

    struct RemoveMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-member", abstract: "Remove a member.")

        @Argument(help: "The member's id.")
        var id: String

        @OptionGroup var output: JSONOutputOption

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(id, what: "node") }
            let answer = try await client.client().callLeader(.DELETE, "/v1/cluster/members/\(id)")
            report(answer, json: output.json) { "removed \(id) at index \($0)" }
        }
    }

    struct TransferLeader: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "transfer-leader",
            abstract: "Hand leadership to another voter, and wait until it leads (ask any member).")

        @Argument(help: "The voter's id (default: the one best placed: heard from lately, longest log).")
        var id: String?

        @OptionGroup var output: JSONOutputOption

        @OptionGroup var client: ClientOptions

        func run() async throws {
            var fields: [(String, JSONValue)] = []
            if let id {
                try usage { try Validation.name(id, what: "node") }
                fields.append(("id", .string(id)))
            }
            let answer = try await client.client().callLeader(.POST, "/v1/cluster/leader", body: .object(fields))
            guard case .string(let leader)? = answer["leader"], case .int(let term)? = answer["term"] else {
                throw CLIError(.protocolError, "the node's answer names no leader: \(answer.serialized())")
            }
            print(output.json ? answer.serialized() : "\(leader) leads now (term \(term))")
        }
    }
}
