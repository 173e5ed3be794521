import ArgumentParser
import Logging
import Node

/// The flags `serve` and `dev` share for how a node logs and keeps its history.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(
        name: .long,
        help: "Snapshot the views and compact the log behind them every this many entries.")
    var snapshotEvery: UInt64 = NodeConfiguration.defaultSnapshotEvery

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How long intents, VM events and starts, and placements no longer a VM's latest stay in the views: 30s, 90m, 12h, 7d; 0 keeps them all.",
            discussion:
                "In a region the leader's setting counts: it proposes the compaction, and every member applies it alike."
        ))
    var historyRetention = "7d"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "invalid --log-level '\(logLevel)': use trace, debug, info, notice, warning, error or critical")
        }
        guard (1...1_000_000_000).contains(snapshotEvery) else {
            throw ValidationError("--snapshot-every must be 1 to 1000000000 (entries)")
        }
        _ = try parseRetention(historyRetention)
    }

    /// The level to log at (validated in ``validate()``).
    var level: Logger.Level { Logger.Level(rawValue: logLevel) ?? .info }

    /// Sets what these flags govern in `configuration`.
    func apply(to configuration: inout NodeConfiguration) throws {
        configuration.snapshotEvery = snapshotEvery
        configuration.historyRetention = try parseRetention(historyRetention)
    }
}
