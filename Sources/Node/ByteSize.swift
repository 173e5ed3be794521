import Foundation

/// Parses and prints sizes the way users write them: `512MiB`, `2GiB`, `1.5GiB`, `4096` (bytes).
/// Binary units (KiB, MiB, GiB, TiB, PiB) only: `2GB` is refused rather than guessed.
public enum ByteSize {
    static let units: [(suffix: String, factor: Int64)] = [
        ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1),
    ]

    public static func parse(_ text: String) throws -> Int64 {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var number = Substring(trimmed)
        var factor: Int64 = 1
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            factor = unit.factor
            break
        }
        number = Substring(number.trimmingCharacters(in: .whitespaces))
        let invalid = NodeError(
            .invalid, "invalid size '\(text)': use bytes or a binary unit, like 512MiB, 2GiB or 1.5GiB")
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != "."
        else { throw invalid }
        let tooLarge = NodeError(.invalid, "size '\(text)' is too large")
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard let whole = Int64(parts[0]) else { throw tooLarge }
        let (wholeBytes, overflow) = whole.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw tooLarge }
        guard parts.count == 2 else { return wholeBytes }
        guard factor > 1 else { throw invalid }
        // The fraction in exact integers (a Double read 1.0000000000000000001GiB as 1GiB): its
        // digits times the unit must be a multiple of 10^digits.
        let digits = parts[1].reversed().drop(while: { $0 == "0" }).reversed()
        let notWhole = NodeError(.invalid, "size '\(text)' is not a whole number of bytes")
        guard !digits.isEmpty else { return wholeBytes }
        guard digits.count <= 19, let fraction = UInt64(String(digits)) else {
            throw NodeError(.invalid, "size '\(text)' has more digits after the point than dwcp reads (19)")
        }
        var scale: UInt64 = 1
        for _ in 0..<digits.count { scale *= 10 }
        let scaled = fraction.multipliedFullWidth(by: UInt64(factor))
        let (fractionBytes, remainder) = scale.dividingFullWidth(scaled)
        guard remainder == 0 else { throw notWhole }
        let (bytes, sumOverflow) = wholeBytes.addingReportingOverflow(Int64(fractionBytes))
        guard !sumOverflow else { throw tooLarge }
        return bytes
    }

    /// `bytes` in the largest binary unit that holds it whole, as the flags take it: "4 MiB",
    /// "4092 KiB", "1000 bytes" (a rounded size could read as the very size it is refused for).
    public static func exactText(_ bytes: Int64) -> String {
        for unit in units.dropLast() where bytes != 0 && bytes % unit.factor == 0 {
            return "\(bytes / unit.factor) \(unit.suffix)"
        }
        return "\(bytes) bytes"
    }
}
