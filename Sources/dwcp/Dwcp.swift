import ArgumentParser
import Node

/// The `dwcp` command: runs a node (`serve`, `dev`) or talks to one.
struct Dwcp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dwcp",
        abstract: "DWCP: a control plane for fleets of KVM hosts.",
        discussion: """
            Every command except 'serve' and 'dev' talks to a node's HTTP API: --server HOST:PORT \
            (or http://HOST:PORT, or https://HOST:PORT with --ca-file, --cert-file and --key-file \
            for an API with TLS), else $DWCP_SERVER, else 127.0.0.1:7070.
            """,
        version: Node.version,
        subcommands: [
            Serve.self, Dev.self, Status.self, HostCommand.self, VMCommand.self, PlanCommand.self, Rebalance.self,
            SQL.self,
            Watch.self, ClusterCommand.self,
        ])
}
