import Foundation
import Store

/// How `dwcp sql` prints a result: an aligned table for people (with the log index the answer
/// reflects), a JSON array of objects keyed by column name, or CSV (RFC 4180) for scripts.
public enum ResultFormat: String, Sendable, CaseIterable {
    case table
    case json
    case csv

    public func render(_ result: QueryResult) -> String {
        switch self {
        case .json: renderJSON(result)
        case .csv: renderCSV(result)
        case .table: renderTable(result)
        }
    }

    private func renderJSON(_ result: QueryResult) -> String {
        let keys = Self.uniqueKeys(result.columns)
        return JSONValue.array(result.rows.map { row in .object(Array(zip(keys, row))) }).serialized() + "\n"
    }

    /// Column names as the keys of a JSON object, each once: a name a column before had already
    /// taken gets `:2`, `:3`, … (`SELECT vms.name, hosts.name` → `name`, `name:2`). An object
    /// that named a key twice would keep one of the two values in most decoders, silently.
    static func uniqueKeys(_ columns: [String]) -> [String] {
        var taken = Set(columns)
        var seen: Set<String> = []
        return columns.map { column in
            if seen.insert(column).inserted { return column }
            var n = 2
            while taken.contains("\(column):\(n)") { n += 1 }
            taken.insert("\(column):\(n)")
            return "\(column):\(n)"
        }
    }

    private func renderCSV(_ result: QueryResult) -> String {
        func field(_ text: String) -> String {
            if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return text
        }
        var out = result.columns.map(field).joined(separator: ",") + "\r\n"
        for row in result.rows {
            out += row.map { field(Self.plain($0)) }.joined(separator: ",") + "\r\n"
        }
        return out
    }

    private func renderTable(_ result: QueryResult) -> String {
        // (A line break or tab in a value is shown escaped: as it is, it broke the table's lines.)
        let cells = result.rows.map { $0.map { Self.oneLine(Self.plain($0)) } }
        // (Padded by the columns a terminal gives each value: a CJK character takes two.)
        var widths = result.columns.map(Self.displayWidth)
        for row in cells {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], Self.displayWidth(cell)) }
        }
        func line(_ values: [String]) -> String {
            zip(values, widths).map { $0 + String(repeating: " ", count: $1 - Self.displayWidth($0)) }
                .joined(separator: "  ")
                .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = line(result.columns) + "\n"
        out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in cells { out += line(row) + "\n" }
        // How fresh the answer is: the log index the views stood at (json and csv stay bare data).
        out += "(\(result.rows.count) row\(result.rows.count == 1 ? "" : "s") at log index \(result.appliedIndex))\n"
        return out
    }

    /// `text` on one line: a control character (a line break, a tab, an escape; C0, DEL, C1) or a
    /// line or paragraph separator as `\n`, `\r`, `\t` or `\u{XX}`. A value with none is shown as
    /// it is; in one with some, a backslash is doubled, so the escapes can be told from its text.
    static func oneLine(_ text: String) -> String {
        func breaks(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value) || scalar.value == 0x2028
                || scalar.value == 0x2029
        }
        guard text.unicodeScalars.contains(where: breaks) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case _ where breaks(scalar): out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A value as plain text: strings unquoted, NULL empty.
    static func plain(_ value: JSONValue) -> String {
        switch value {
        case .null: ""
        case .string(let s): s
        default: value.serialized()
        }
    }
}
