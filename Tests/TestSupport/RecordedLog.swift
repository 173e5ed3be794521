import Logging
import Synchronization

/// Log lines kept in memory, for tests that check what a component says.
public final class RecordedLog: Sendable {
    private let recorded = Mutex<[String]>([])

    public init() {}

    public var logger: Logger {
        Logger(label: "recorded") { _ in Handler(log: self) }
    }
    public var lines: [String] { recorded.withLock { $0 } }
    public func contains(_ text: String) -> Bool { recorded.withLock { $0.contains { $0.contains(text) } } }

    struct Handler: LogHandler {
        let log: RecordedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            log.recorded.withLock { $0.append("\(event.level) \(event.message)") }
        }
    }
}
