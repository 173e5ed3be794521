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
        if let whole = Int64(number) {
            let (product, overflow) = whole.multipliedReportingOverflow(by: factor)
            guard !overflow else { throw NodeError(.invalid, "size '\(text)' is too large") }
            return product
        }
        guard factor > 1, let value = Double(number) else { throw invalid }
        let bytes = value * Double(factor)
        guard bytes < 9.0e18 else { throw NodeError(.invalid, "size '\(text)' is too large") }
        guard bytes == bytes.rounded() else {
            throw NodeError(.invalid, "size '\(text)' is not a whole number of bytes")
        }
        return Int64(bytes)
    }
}
