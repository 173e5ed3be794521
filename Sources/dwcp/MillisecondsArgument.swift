import ArgumentParser

/// A number of milliseconds on the command line: `300`, `300ms`, `1s` or `1.5s`. Flags that took
/// a bare number answered `10ms` with ArgumentParser's "The value '10ms' is invalid", while
/// `--history-retention` and `--verify-every` took `30s`.
struct MillisecondsArgument: ExpressibleByArgument, Equatable, Sendable {
    var value: Int

    init(_ value: Int) { self.value = value }

    init?(argument: String) {
        if let plain = Int(argument) {
            value = plain
        } else if argument.hasSuffix("ms"), let number = Int(argument.dropLast(2)) {
            value = number
        } else if argument.hasSuffix("s"), let seconds = Double(argument.dropLast()), seconds.isFinite,
            seconds >= 0, seconds < 1e9, (seconds * 1000).rounded() == seconds * 1000
        {
            value = Int(seconds * 1000)
        } else {
            return nil
        }
    }

    var defaultValueDescription: String { "\(value)" }
}
