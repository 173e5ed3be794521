/// Finds a key that an object of a JSON text names twice. Foundation's decoder takes one of the
/// two values without a word (`{"cpus": 2, "cpus": 16}` creates a VM of 2 CPUs); the API refuses
/// such a body instead, naming the key.
enum JSONDuplicateKeys {
    /// One open object or array, and the key it sits under.
    private struct Container {
        var path: String
        var isObject: Bool
        var keys: Set<String> = []
        var expectingKey: Bool
        var lastKey = ""
        /// An array's element being read.
        var element = 0
    }

    /// The first key named twice in one object of `json` (which must be valid JSON), with the keys
    /// of the objects and the places in the arrays it is in (`labels.zone`, `items[2].name`); nil
    /// when none is.
    static func first(in json: [UInt8]) -> String? {
        var stack: [Container] = []
        var index = 0
        while index < json.count {
            let byte = json[index]
            index += 1
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let parent =
                    stack.last.map { $0.isObject ? Self.join($0.path, $0.lastKey) : "\($0.path)[\($0.element)]" } ?? ""
                stack.append(Container(path: parent, isObject: byte == UInt8(ascii: "{"), expectingKey: true))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                if !stack.isEmpty {
                    stack[stack.count - 1].expectingKey = true
                    stack[stack.count - 1].element += 1
                }
            case UInt8(ascii: "\""):
                let string = Self.string(json, from: &index)
                guard let top = stack.last, top.isObject, top.expectingKey else { continue }
                if top.keys.contains(string) { return Self.join(top.path, string) }
                stack[stack.count - 1].keys.insert(string)
                stack[stack.count - 1].lastKey = string
                stack[stack.count - 1].expectingKey = false
            default:
                continue
            }
        }
        return nil
    }

    /// `key` under `path`; a long key (a body may hold a megabyte of one) is cut to its first 64
    /// characters in the message.
    private static func join(_ path: String, _ key: String) -> String {
        let shown = key.count > 64 ? key.prefix(64) + "…" : Substring(key)
        return path.isEmpty ? String(shown) : path + "." + shown
    }

    /// The string that starts at `index` (just after its opening quote), its escapes decoded;
    /// leaves `index` after its closing quote.
    private static func string(_ json: [UInt8], from index: inout Int) -> String {
        var bytes: [UInt8] = []
        var pendingHighSurrogate: UInt32?
        while index < json.count {
            let byte = json[index]
            index += 1
            if byte == UInt8(ascii: "\"") { break }
            guard byte == UInt8(ascii: "\\"), index < json.count else {
                bytes.append(byte)
                continue
            }
            let escape = json[index]
            index += 1
            switch escape {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                guard index + 4 <= json.count,
                    let unit = UInt32(String(decoding: json[index..<(index + 4)], as: UTF8.self), radix: 16)
                else { continue }
                index += 4
                var scalar: Unicode.Scalar?
                if (0xD800...0xDBFF).contains(unit) {
                    pendingHighSurrogate = unit
                    continue
                } else if (0xDC00...0xDFFF).contains(unit), let high = pendingHighSurrogate {
                    scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))
                } else {
                    scalar = Unicode.Scalar(unit)
                }
                pendingHighSurrogate = nil
                if let scalar { bytes.append(contentsOf: Array(String(Character(scalar)).utf8)) }
            default: bytes.append(escape)  // \" \\ \/
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
