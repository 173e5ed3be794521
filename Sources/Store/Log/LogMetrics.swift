import Metrics

/// What the log reports about its writes, through swift-metrics: how long a group takes to become
/// durable, how many entries the groups carry, the checkpoints into LMDB and the writes that failed.
/// Made from the factory the node passes (Prometheus in `dwcp serve`); no-ops without one.
public struct LogMetrics: Sendable {
    /// A writer group's journal record written and fdatasynced (or its synced LMDB commit), with
    /// the checkpoint it had to wait for when the journal was full.
    let writeDuration: Timer
    let entriesWritten: Counter
    let writeFailures: Counter
    /// A checkpoint's synced LMDB transaction.
    let checkpointDuration: Timer
    /// Checkpoints that failed (the journal keeps the changes; writes fail once it is full).
    let checkpointFailures: Counter

    public init(factory: any MetricsFactory) {
        writeDuration = Timer(label: "dwcp_log_write_duration_seconds", factory: factory)
        entriesWritten = Counter(label: "dwcp_log_entries_written_total", factory: factory)
        writeFailures = Counter(label: "dwcp_log_write_failures_total", factory: factory)
        checkpointDuration = Timer(label: "dwcp_log_checkpoint_duration_seconds", factory: factory)
        checkpointFailures = Counter(label: "dwcp_log_checkpoint_failures_total", factory: factory)
    }

    /// Metrics that go nowhere (tests, tools).
    public static let none = LogMetrics(factory: NOOPMetricsHandler.instance)
}
