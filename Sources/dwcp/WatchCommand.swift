import ArgumentParser
import Foundation
import Store

/// `dwcp watch`: committed records from an index on, then new commits as they happen.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print committed records, one JSON object per line, and follow new commits.")

    enum Format: String, ExpressibleByArgument {
        case json
        case text
    }

    @Option(name: .long, help: "Start at this log index (default: the next commit).")
    var fromIndex: UInt64?

    @Option(name: .long, help: "Stop after this many records.")
    var limit: Int?

    @Option(name: .long, help: "json (one object per line) or text.")
    var format: Format = .json

    @OptionGroup var client: ClientOptions

    func run() async throws {
        var query: [String] = []
        if let fromIndex {
            guard fromIndex >= 1, fromIndex <= UInt64(Int64.max) else {
                throw CLIError(.usage, "--from-index must be 1 to \(Int64.max) (a log index)")
            }
            query.append("from_index=\(fromIndex)")
        }
        if let limit {
            guard limit >= 1 else { throw CLIError(.usage, "--limit must be 1 or more") }
            query.append("limit=\(limit)")
        }
        let path = "/v1/watch" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        // An index ahead of the log is waited for, which would otherwise look like a hang.
        if let fromIndex, let status = try? await client.client().call(.GET, "/v1/status"),
            let commit = status["commit_index"]?.intValue, fromIndex > UInt64(max(commit, 0)) + 1
        {
            StandardStream.error.write(
                "dwcp: waiting for log index \(fromIndex) (the log is committed through \(commit))\n")
        }
        var lastLine: String?
        do {
            try await client.client().stream(path) { line in
                lastLine = line
                let text = format == .json ? line : Self.text(try? JSONValue.parse(line), line: line)
                StandardStream.output.write(text + "\n")
            }
        } catch let error as CLIError where error.code != .usage && error.httpStatus == nil {
            throw Self.withResumeHint(error, lastLine: lastLine, fromIndex: fromIndex)
        }
    }

    /// A stream that ended early (the node stopped, or the connection broke after records came),
    /// not a refusal nor a node never reached, with where to go on when it is known (a watch of
    /// the next commit that saw none is not). Only the last record is read for it. A stream ended
    /// because the entries after it were compacted away (a snapshot replaced the member's log)
    /// keeps its own advice, to re-list; one ended by damage to the node's log gets none (going
    /// on from there would meet the same damage).
    static func withResumeHint(_ error: CLIError, lastLine: String?, fromIndex: UInt64?) -> CLIError {
        let lastRecord = lastLine.flatMap { try? JSONValue.parse($0) }?["log_index"]?.intValue.map(UInt64.init)
        guard lastLine != nil || error.code == .refused, !error.message.hasPrefix("compacted:"),
            !error.message.contains(" is damaged"),
            let lastIndex = lastRecord ?? fromIndex.map({ $0 - 1 })
        else { return error }
        return CLIError(
            error.code, "\(error.message); to go on: dwcp watch --from-index \(lastIndex + 1)", cause: error.cause,
            httpStatus: error.httpStatus, leaderAPI: error.leaderAPI)
    }

    /// One watch line for people; `line` as it came when it is not a JSON object.
    static func text(_ value: JSONValue?, line: String) -> String {
        guard let value else { return line }
        let index = value["log_index"]?.stringValue ?? "?"
        let kind = value["kind"]?.stringValue ?? "?"
        let record = value["record"]
        let subject = record?["name"]?.stringValue ?? record?["vm"]?.stringValue ?? ""
        var extra: [String] = []
        if let state = record?["state"]?.stringValue, kind == "vm.state_reported" { extra.append("state=\(state)") }
        if let host = record?["host"]?.stringValue { extra.append("host=\(host)") }
        if let state = record?["desired_state"]?.stringValue, kind == "vm.desired_state_set" {
            extra.append("desired_state=\(state)")
        }
        if let reason = record?["reason"]?.stringValue { extra.append("reason=\"\(reason)\"") }
        if let before = record?["before_index"]?.intValue { extra.append("before_index=\(before)") }
        if let region = record?["region_id"]?.stringValue { extra.append("region_id=\(region)") }
        if let marker = value["marker"]?.stringValue { extra.append("marker=\(marker)") }
        // An entry whose record could not be read says why, rather than "?" alone.
        if let error = value["error"]?.stringValue { extra.append("error=\"\(error)\"") }
        // (An entry without a subject, a no-op, has no space before its first field.)
        return "\(index)\t\(kind)\t" + ([subject].filter { !$0.isEmpty } + extra).joined(separator: " ")
    }
}
