/// `--history-retention`'s bounds.
public enum HistoryRetention {
    /// Shorter would let an intent's row go before its answer reads it on a loaded machine.
    public static let minimum = Duration.seconds(10)

    /// The retention `text` gives (``DurationFlag``), nil (`0`) to keep the history for ever.
    public static func parse(_ text: String) throws -> Duration? {
        try DurationFlag.parse(text, minimum: minimum, off: "keep everything")
    }
}
