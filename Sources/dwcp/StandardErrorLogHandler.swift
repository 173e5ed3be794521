import Logging

/// The log handler of `dwcp serve` and `dwcp dev`: swift-log's `StreamLogHandler` on standard
/// error, with the logger's metadata kept aside until a message is written.
///
/// `StreamLogHandler` formats all of its metadata each time a key is set, and the HTTP server
/// sets a request id on every request's logger: a leader spent a few percent of its CPU
/// formatting lines that were never written (BENCHMARKS.md, bench/region, item 10). Here setting a key
/// only stores it; a written line carries the same metadata as before.
struct StandardErrorLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.init(wrapping: StreamLogHandler.standardError(label: label), level: level)
    }

    /// The same around any `StreamLogHandler` (the tests give it one that writes to a buffer).
    init(wrapping stream: StreamLogHandler, level: Logger.Level) {
        self.stream = stream
        self.stream.logLevel = level
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        stream.log(event: event)
    }
}
