/// Parses and prints durations the way the node's flags take them (`--history-retention`,
/// `--verify-every`): a whole number of seconds, minutes, hours or days (`45s`, `90m`, `12h`,
/// `7d`); `0` turns off what the flag governs (nil).
public enum DurationFlag {
    static let units: [(suffix: Character, seconds: Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]

    /// `text` as a duration of at least `minimum`, nil for `0`; `off` says what `0` does.
    public static func parse(_ text: String, minimum: Duration, off: String) throws -> Duration? {
        if text == "0" { return nil }
        let digits = text.dropLast()
        guard let unit = units.first(where: { $0.suffix == text.last }),
            !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }), case let count = Int64(digits) ?? .max,
            count > 0
        else {
            throw NodeError(
                .invalid, "invalid duration '\(text)': expected a number and s, m, h or d (7d), or 0 to \(off)")
        }
        guard count <= 36_500 * 86_400 / unit.seconds else {
            throw NodeError(.invalid, "'\(text)' is longer than 100 years (36500d)")
        }
        let duration = Duration.seconds(count * unit.seconds)
        guard duration >= minimum else {
            throw NodeError(.invalid, "it must be at least \(describe(minimum)) (or 0 to \(off))")
        }
        return duration
    }

    /// `duration` as the flags spell it: `7d`, `12h`, `90m`, `45s` (under a second, which only
    /// tests set: `100ms`).
    public static func describe(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds == 0 { return "\(Int(duration / .milliseconds(1)))ms" }
        let unit = units.first { seconds % $0.seconds == 0 }!  // seconds always divide
        return "\(seconds / unit.seconds)\(unit.suffix)"
    }
}
