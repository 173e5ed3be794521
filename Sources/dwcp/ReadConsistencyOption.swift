import ArgumentParser
import Node

extension ReadConsistency: ExpressibleByArgument {}

/// `--consistency`: how fresh the views that answer a read must be. `dwcp sql`, the list
/// commands, `dwcp plan`, `dwcp vm explain` and `dwcp rebalance --plan` take it alike.
struct ReadConsistencyOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "local (this node's views), leader (the leader's, no quorum round) or linearizable (sees every acknowledged intent).",
            valueName: "level"))
    var consistency: ReadConsistency = .linearizable

    /// The query string that asks a node for it (`consistency=…`).
    var queryItem: String { "consistency=\(consistency.rawValue)" }
}
