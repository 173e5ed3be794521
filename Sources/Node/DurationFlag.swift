/// Parses and prints history retentions the way `--history-retention` takes them: a whole number
/// of seconds, minutes, hours or days (`45s`, `90m`, `12h`, `7d`), at least ``minimum``; `0`
/// keeps the history for ever (nil).
public enum HistoryRetention {
    static let units: [(suffix: Character, seconds: Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    /// Shorter would let an intent's row go before its answer reads it on a loaded machine.
    public static let minimum = Duration.seconds(10)

    public static func parse(_ text: String) throws -> Duration? {
        if text == "0" { return nil }
        let digits = text.dropLast()
        guard let unit = units.first(where: { $0.suffix == text.last }),
            !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }),
            let count = Int64(digits), count > 0, count <= 36_500 * 86_400 / unit.seconds
        else {
            throw NodeError(.invalid, "invalid retention '\(text)': expected a number and s, m, h or d (7d), or 0")
        }
        let retention = Duration.seconds(count * unit.seconds)
        guard retention >= minimum else {
            throw NodeError(.invalid, "a retention must be at least 10s (or 0 to keep everything)")
        }
        return retention
    }

    /// `retention` as the flag spells it: `7d`, `12h`, `90m`, `45s`.
    public static func describe(_ retention: Duration) -> String {
        let seconds = retention.components.seconds
        let unit = units.first { seconds % $0.seconds == 0 }!  // seconds always divide
        return "\(seconds / unit.seconds)\(unit.suffix)"
    }
}
