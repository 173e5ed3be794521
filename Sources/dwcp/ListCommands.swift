import ArgumentParser
import Node
import Query

/// What `dwcp vm list` and `dwcp host list` take besides their filters: how to print the rows and
/// how fresh they must be (as `dwcp sql`).
struct ListOptions: ParsableArguments {
    @OptionGroup var output: QueryOutputOptions

    @Option(name: .long, help: "Print the first N rows by name (a fleet past the node's row limit needs it).")
    var limit: Int?

    @OptionGroup var client: ClientOptions

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be 1 or more") }
    }

    /// Prints the rows of `select` restricted by `conditions` (SQL, joined with AND), by name; or,
    /// when the node's views lack a column `select` reads (a node whose schema predates this CLI's,
    /// in the middle of an upgrade), the rows of `olderSelect`, which reads only older columns.
    func show(_ select: String, onOlderNodes olderSelect: String, where conditions: [String]) async throws {
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let first = limit.map { " LIMIT \($0)" } ?? ""
        do {
            try await SQL.show(select + filter + " ORDER BY name" + first, output: output, client: client)
        } catch let error as CLIError where error.code == .refused && error.message.contains("no such column") {
            try await SQL.show(olderSelect + filter + " ORDER BY name" + first, output: output, client: client)
        }
    }
}

/// The states `vms.actual_state` takes (schema/001_init.sql), for `dwcp vm list --state`.
enum VMActualState: String, CaseIterable, ExpressibleByArgument {
    case pending, unschedulable, scheduled, starting, running, stopped, crashed
}

extension VMCommand {
    /// `dwcp vm list`: one row per VM, by name; a fixed query over the `vms` view.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the VMs, by name (a query over the vms view; dwcp sql for any other).")

        @Option(name: .long, help: "Only the VMs placed on this host.")
        var host: String?

        @Option(name: .long, help: "Only the VMs of this region.")
        var region: String?

        @Option(
            name: .long,
            help: ArgumentHelp(
                "Only the VMs in this actual state: \(VMActualState.allCases.map(\.rawValue).joined(separator: ", ")).",
                valueName: "state"))
        var state: VMActualState?

        @OptionGroup var options: ListOptions

        func run() async throws {
            var conditions: [String] = []
            if let host { conditions.append("host = \(host.sqlLiteral)") }
            if let region { conditions.append("region = \(region.sqlLiteral)") }
            if let state { conditions.append("actual_state = \(state.rawValue.sqlLiteral)") }
            // A VM on a host that is not ready: its state is the last its host reported.
            try await options.show(
                """
                SELECT name, region, host, cpus, memory_bytes, desired_state, actual_state, \
                CASE WHEN (SELECT state FROM hosts WHERE hosts.name = vms.host) = 'not_ready' \
                THEN ltrim(reason || ' (as last reported: its host is not ready: ' \
                || (SELECT state_reason FROM hosts WHERE hosts.name = vms.host) || ')') \
                ELSE reason END AS reason FROM vms
                """,
                // (Schema 010 and before: no hosts.state_reason.)
                onOlderNodes: """
                    SELECT name, region, host, cpus, memory_bytes, desired_state, actual_state, reason FROM vms
                    """,
                where: conditions)
        }
    }
}

extension HostCommand {
    /// `dwcp host list`: one row per host, by name, with what its VMs use; a fixed query over the
    /// `hosts` view.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "List the hosts, by name, with their VMs' use (a query over the hosts view; dwcp sql for any other).")

        @Option(name: .long, help: "Only the hosts of this region.")
        var region: String?

        @OptionGroup var options: ListOptions

        func run() async throws {
            try await options.show(
                """
                SELECT name, region, state, cpus, cpus_used, memory_bytes, memory_used_bytes, \
                (SELECT count(*) FROM vms WHERE vms.host = hosts.name) AS vms, labels, state_reason AS reason \
                FROM hosts
                """,
                onOlderNodes: """
                    SELECT name, region, state, cpus, cpus_used, memory_bytes, memory_used_bytes, \
                    (SELECT count(*) FROM vms WHERE vms.host = hosts.name) AS vms, labels, NULL AS reason FROM hosts
                    """,
                where: region.map { ["region = \($0.sqlLiteral)"] } ?? [])
        }
    }
}
