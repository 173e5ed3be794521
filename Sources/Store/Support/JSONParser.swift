/// Why a text is not the JSON the parser accepts.
public struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Not JSON (RFC 8259), or nested deeper than ``JSONParser/maximumDepth``.
        case invalid
        /// An object names a key twice.
        case duplicateKey
        /// A number past what a 64-bit integer (without a fraction or an exponent) or a double
        /// (with one) holds: refused where Foundation would round it, or read it exactly.
        case numberOutOfRange
    }

    public let code: Code
    public let message: String
    /// Where: the byte offset of the fault.
    public let offset: Int
    /// For ``Code/duplicateKey`` and ``Code/numberOutOfRange``: where, as the keys and array places
    /// that lead there (`labels.zone`, `items[2].name`; a key past 64 characters cut there).
    public let path: String

    public var description: String { message }
}

/// A strict JSON parser (RFC 8259) from UTF-8 bytes into a ``JSONValue`` that keeps each
/// object's key order, and refuses an object that names a key twice (Foundation's decoder takes
/// one of the two values without a word).
///
/// It is the API's reader of request bodies: Foundation's `JSONDecoder` spent about 11 µs on a
/// 30-byte body on the leader at 64 clients, 8 % of its event loop (BENCHMARKS.md, bench/region,
/// "Request bodies"). Numbers without a fraction or an exponent are integers (`Int64`), the others
/// doubles; one past what its kind holds is refused (``JSONSyntaxError/Code/numberOutOfRange``).
/// Strings must be valid UTF-8.
public struct JSONParser {
    /// How deep arrays and objects may nest (Foundation's limit).
    public static let maximumDepth = 512

    private let bytes: UnsafeRawBufferPointer
    private var offset = 0
    private var depth = 0
    /// The keys and array places leading to the value being read (for an error's path).
    private var path: [PathPart] = []

    private enum PathPart {
        case key(String)
        case place(Int)
    }

    /// Parses one JSON value, with nothing but whitespace around it.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value()
        parser.skipWhitespace()
        guard parser.offset == bytes.count else { throw parser.invalid("unexpected text after the JSON value") }
        return value
    }

    /// ``parse(_:)`` of a byte array.
    public static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(JSONSyntaxError) in try parse(buffer) } }
        return try result.get()
    }

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private func invalid(_ what: String) -> JSONSyntaxError {
        JSONSyntaxError(code: .invalid, message: "invalid JSON at byte \(offset): \(what)", offset: offset, path: "")
    }

    private var atEnd: Bool { offset >= bytes.count }
    private var current: UInt8 { bytes[offset] }

    private mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONValue {
        guard !atEnd else { throw invalid("the text ends where a value should be") }
        switch current {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw invalid("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONValue) throws(JSONSyntaxError) -> JSONValue {
        let count = word.utf8CodeUnitCount
        guard bytes.count - offset >= count else { throw invalid("unexpected character") }
        for k in 0..<count where bytes[offset + k] != word.utf8Start[k] { throw invalid("unexpected character") }
        offset += count
        return value
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw invalid("nested deeper than \(Self.maximumDepth) levels") }
        offset += 1
        skipWhitespace()
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        var members: [(String, JSONValue)] = []
        // The keys seen, once there are more than a scan should walk (a 1 MiB body may name
        // 100,000 keys: scanning for each would take the event loop for seconds).
        var keys: Set<String>?
        if !atEnd, current == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            guard !atEnd, current == UInt8(ascii: "\"") else { throw invalid("expected a key in quotes") }
            let keyOffset = offset
            let key = try string()
            // Objects in requests are small: a scan is cheaper than a set, up to a few keys.
            let named: Bool
            if keys == nil, members.count < 16 {
                named = members.contains(where: { $0.0 == key })
            } else {
                if keys == nil { keys = Set(members.map(\.0)) }
                named = !keys!.insert(key).inserted
            }
            if named {
                let place = Self.join(path + [.key(key)])
                throw JSONSyntaxError(
                    code: .duplicateKey, message: "the key '\(place)' is named twice", offset: keyOffset, path: place)
            }
            skipWhitespace()
            guard !atEnd, current == UInt8(ascii: ":") else { throw invalid("expected ':' after a key") }
            offset += 1
            skipWhitespace()
            path.append(.key(key))
            let member = try value()
            path.removeLast()
            members.append((key, member))
            skipWhitespace()
            guard !atEnd else { throw invalid("the text ends inside an object") }
            if current == UInt8(ascii: ",") {
                offset += 1
                skipWhitespace()
                continue
            }
            guard current == UInt8(ascii: "}") else { throw invalid("expected ',' or '}' in an object") }
            offset += 1
            return .object(members)
        }
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        defer { depth -= 1 }
        var items: [JSONValue] = []
        if !atEnd, current == UInt8(ascii: "]") {
            offset += 1
            return .array(items)
        }
        while true {
            path.append(.place(items.count))
            let item = try value()
            path.removeLast()
            items.append(item)
            skipWhitespace()
            guard !atEnd else { throw invalid("the text ends inside an array") }
            if current == UInt8(ascii: ",") {
                offset += 1
                skipWhitespace()
                continue
            }
            guard current == UInt8(ascii: "]") else { throw invalid("expected ',' or ']' in an array") }
            offset += 1
            return .array(items)
        }
    }

    /// `labels.zone`, `items[2].name`: keys joined by dots (each cut to its first 64 characters: a
    /// body may hold a megabyte of one), array places after what holds them.
    private static func join(_ path: [PathPart]) -> String {
        var out = ""
        for part in path {
            switch part {
            case .key(let key):
                if !out.isEmpty { out += "." }
                out += key.count > 64 ? key.prefix(64) + "…" : key
            case .place(let index):
                out += "[\(index)]"
            }
        }
        return out
    }

    /// The string starting at the opening quote under `offset`; leaves `offset` after its closing one.
    private mutating func string() throws(JSONSyntaxError) -> String {
        offset += 1
        let start = offset
        // Most strings (names, labels) hold no escape: taken whole.
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let text = try Self.text(UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), at: start)
                offset += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw invalid("a control character inside a string") }
            offset += 1
        }
        var decoded = Array(bytes[start..<offset])
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try Self.text(decoded, at: start)
            case UInt8(ascii: "\\"):
                guard !atEnd else { throw invalid("the text ends inside a string") }
                let escape = current
                offset += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"): decoded.append(contentsOf: try unicodeEscape())
                default: throw invalid("an unknown escape in a string")
                }
            default:
                guard byte >= 0x20 else { throw invalid("a control character inside a string") }
                decoded.append(byte)
            }
        }
        throw invalid("the text ends inside a string")
    }

    /// The UTF-8 of a `\uXXXX` escape (after its `\u`), with the low half of a surrogate pair.
    private mutating func unicodeEscape() throws(JSONSyntaxError) -> [UInt8] {
        var unit = try hex4()
        if (0xD800...0xDBFF).contains(unit) {
            guard bytes.count - offset >= 6, bytes[offset] == UInt8(ascii: "\\"),
                bytes[offset + 1] == UInt8(ascii: "u")
            else { throw invalid("a lone surrogate in a \\u escape") }
            offset += 2
            let low = try hex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw invalid("a lone surrogate in a \\u escape") }
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(unit) {
            throw invalid("a lone surrogate in a \\u escape")
        }
        guard let scalar = Unicode.Scalar(unit) else { throw invalid("an invalid \\u escape") }
        return Array(String(Character(scalar)).utf8)
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw invalid("a \\u escape needs four hex digits") }
        var unit: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw invalid("a \\u escape needs four hex digits")
            }
            unit = unit << 4 | UInt32(digit)
            offset += 1
        }
        return unit
    }

    private static func text(_ utf8: some Collection<UInt8>, at offset: Int) throws(JSONSyntaxError) -> String {
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw JSONSyntaxError(
                code: .invalid, message: "invalid JSON at byte \(offset): a string that is not UTF-8", offset: offset,
                path: "")
        }
        return text
    }

    /// A number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let start = offset
        if current == UInt8(ascii: "-") { offset += 1 }
        guard !atEnd, Self.isDigit(current) else { throw invalid("a number needs a digit") }
        if current == UInt8(ascii: "0") {
            offset += 1
            if !atEnd, Self.isDigit(current) { throw invalid("a number may not start with 0") }
        } else {
            while !atEnd, Self.isDigit(current) { offset += 1 }
        }
        var integral = true
        if !atEnd, current == UInt8(ascii: ".") {
            integral = false
            offset += 1
            guard !atEnd, Self.isDigit(current) else { throw invalid("a fraction needs a digit") }
            while !atEnd, Self.isDigit(current) { offset += 1 }
        }
        if !atEnd, current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            integral = false
            offset += 1
            if !atEnd, current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { offset += 1 }
            guard !atEnd, Self.isDigit(current) else { throw invalid("an exponent needs a digit") }
            while !atEnd, Self.isDigit(current) { offset += 1 }
        }
        let lexeme = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        if integral {
            if let integer = Int64(lexeme) { return .int(integer) }
        } else if let double = Double(lexeme), double.isFinite {
            return .double(double)
        }
        let place = Self.join(path)
        throw JSONSyntaxError(
            code: .numberOutOfRange,
            message:
                "the number at byte \(start)\(place.isEmpty ? "" : " ('\(place)')") is past what \(integral ? "a 64-bit integer" : "a double") holds",
            offset: start, path: place)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }
}
