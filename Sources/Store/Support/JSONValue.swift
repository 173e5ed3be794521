/// A JSON value whose objects keep their key order, so that what DWCP prints and stores
/// (records in `watch`, intent payloads, placement explanations, SQL rows) is stable and readable.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.serializedBytes() == rhs.serializedBytes()
    }

    /// Compact JSON text.
    public func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }

    /// Compact JSON text as UTF-8 bytes (what an HTTP answer sends, without a String between).
    public func serializedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(to: &out)
        return out
    }

    /// Appends the compact JSON text of the value to `out` as UTF-8. Bytes, not a String: a row of
    /// a dozen fields is a hundred small appends, and each append to a String checks and grows its
    /// storage. Writing bytes cut the leader's event-loop CPU per write by 7 % (BENCHMARKS.md,
    /// bench/region, "JSON as bytes").
    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.isFinite {
                out.append(contentsOf: (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) + ".0" : String(d)).utf8)
            } else {
                out.append(contentsOf: "null".utf8)
            }
        case .string(let s): Self.writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings (names, labels, states) need no escape: append them whole.
        guard s.utf8.contains(where: needsEscape) else {
            out.append(contentsOf: s.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        // Bytes of non-ASCII scalars (0x80 and above) go out as they are.
        for byte in s.utf8 {
            guard needsEscape(byte) else {
                out.append(byte)
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
            case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
            case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
            default:
                let hex = String(byte, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The bytes JSON text cannot hold as they are: control characters, the quote, the backslash.
    /// (UTF-8 bytes of other scalars are all 0x80 or above, so a byte test finds every one.)
    static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// A string map as an object with keys in order.
    public static func map(_ map: [String: String]) -> JSONValue {
        .object(map.keys.sorted().map { ($0, .string(map[$0]!)) })
    }

    /// Parses JSON text (``JSONParser``: strict, numbers read exactly) into a value; object keys
    /// come out sorted. (Foundation's `JSONSerialization` read some doubles of 17 digits wrongly on
    /// Linux: `dwcp sql` printed 0.3000000000000001 for the node's 0.30000000000000004.)
    public static func parse(_ text: String) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8)).withSortedKeys
    }

    /// ``parse(_:)`` of UTF-8 bytes (an HTTP answer's, read in place).
    public static func parse(bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        try JSONParser.parse(bytes).withSortedKeys
    }

    /// The value with every object's keys in order.
    private var withSortedKeys: JSONValue {
        switch self {
        case .array(let items): .array(items.map(\.withSortedKeys))
        case .object(let members):
            .object(members.map { ($0.0, $0.1.withSortedKeys) }.sorted { $0.0 < $1.0 })
        default: self
        }
    }
}

extension JSONValue {
    /// The member named `key` of an object (nil for other values).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.0 == key })?.1
    }

    /// Strings, numbers and booleans as text (nil for null, arrays and objects).
    public var stringValue: String? {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .bool(let b): String(b)
        default: nil
        }
    }

    /// An integer's value.
    public var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }
}
