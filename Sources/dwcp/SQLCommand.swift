import ArgumentParser
import Foundation
import Node
import Query
import Store

extension ResultFormat: ExpressibleByArgument {}

/// How a query's rows are printed and how fresh they must be: `dwcp sql`, `dwcp vm list` and
/// `dwcp host list` take these alike.
struct QueryOutputOptions: ParsableArguments {
    @Option(name: .long, help: "table, json or csv (default: table on a terminal, json otherwise).")
    var format: ResultFormat?

    @Flag(name: .long, help: "The same as --format json: one JSON array of the rows.")
    var json = false

    @OptionGroup var freshness: ReadConsistencyOption
    var consistency: ReadConsistency { freshness.consistency }

    func validate() throws {
        if json, let format, format != .json {
            throw ValidationError("--json and --format \(format.rawValue) ask for different formats: give one")
        }
    }

    /// The format to print in: the one asked for, else a table on a terminal and JSON otherwise.
    var chosenFormat: ResultFormat {
        if json { return .json }
        return format ?? (isatty(STDOUT_FILENO) != 0 ? .table : .json)
    }
}

/// `dwcp sql QUERY`: read-only SQL over the fleet's views.
struct SQL: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a read-only SQL query over the views (.tables and .schema [TABLE] work too).")

    @Argument(help: "The query.")
    var query: String

    @Option(name: .long, help: "Refuse results with more rows than this.")
    var maxRows: Int?

    @OptionGroup var output: QueryOutputOptions

    @OptionGroup var client: ClientOptions

    func run() async throws {
        if let maxRows, maxRows <= 0 { throw CLIError(.usage, "--max-rows must be 1 or more") }
        try await Self.show(query, output: output, maxRows: maxRows, client: client)
    }

    /// Runs `query` on the node and prints its rows as `output` says: `dwcp sql`, and the fixed
    /// queries of `dwcp vm list` and `dwcp host list`.
    static func show(
        _ query: String, output: QueryOutputOptions, maxRows: Int? = nil, client: ClientOptions
    ) async throws {
        var fields: [(String, JSONValue)] = [
            ("query", .string(query)), ("consistency", .string(output.consistency.rawValue)),
        ]
        if let maxRows { fields.append(("max_rows", .int(Int64(maxRows)))) }
        // A query only reads: safe to send again (a linearizable read during an election answers 503).
        // A leader read asked of a follower goes to the leader.
        let answer = try await client.client().callLeader(.POST, "/v1/sql", body: .object(fields), retrying: true)
        guard case .array(let columns)? = answer["columns"], case .array(let rows)? = answer["rows"] else {
            throw CLIError(.protocolError, "the node's answer has no columns and rows")
        }
        let result = QueryResult(
            columns: columns.map { $0.stringValue ?? "" },
            rows: rows.map { row in
                if case .array(let values) = row { return values }
                return []
            },
            appliedIndex: UInt64(answer["applied_index"]?.intValue ?? 0))
        StandardStream.output.write(output.chosenFormat.render(result))
    }
}
