/// Writes a record's fields as tagged values (field number + wire type, then the value), so
/// readers can skip fields they do not know and default fields that are absent. Integers are
/// varints; strings, byte strings and nested messages are length-prefixed.
public struct FieldWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    enum WireType: UInt8 {
        case varint = 0
        case lengthDelimited = 2
    }

    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func tag(_ field: Int, _ wire: WireType) {
        writeVarint(UInt64(field) << 3 | UInt64(wire.rawValue))
    }

    public mutating func write(_ field: Int, _ value: UInt64) {
        tag(field, .varint)
        writeVarint(value)
    }

    public mutating func write(_ field: Int, _ value: Int64) {
        // Zig-zag, so small negative numbers stay small.
        write(field, UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func write(_ field: Int, _ value: Int) { write(field, Int64(value)) }

    public mutating func write(_ field: Int, _ value: Bool) { write(field, UInt64(value ? 1 : 0)) }

    public mutating func write(_ field: Int, _ value: String) { write(field, bytes: Array(value.utf8)) }

    public mutating func write(_ field: Int, bytes value: [UInt8]) {
        tag(field, .lengthDelimited)
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// Writes a string map as repeated (key, value) pairs in key order, so equal maps encode equally.
    /// Writes a string map as repeated (key, value) pairs in key order, so equal maps encode equally.
    public mutating func write(_ field: Int, _ map: [String: String]) {
        for key in map.keys.sorted() {
            var pair = FieldWriter()
            pair.write(1, key)
            pair.write(2, map[key]!)
            write(field, bytes: pair.bytes)
        }
    }
}
