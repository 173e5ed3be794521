/// Reads what ``FieldWriter`` wrote. Every field is collected by number; unknown fields are kept
/// but ignored by the record types, so a newer writer's additions do not break an older reader.
public struct FieldReader: Sendable {
    enum Value: Sendable {
        case varint(UInt64)
        case bytes([UInt8])
    }

    private var fields: [Int: [Value]] = [:]
    /// What is being read, for error messages (e.g. "vm.created").
    let context: String

    public init(_ bytes: ArraySlice<UInt8>, context: String) throws {
        self.context = context
        var position = bytes.startIndex
        func varint() throws -> UInt64 { try Self.varint(bytes, at: &position, context: context) }
        while position < bytes.endIndex {
            let key = try varint()
            let field = Int(truncatingIfNeeded: key >> 3)
            switch key & 7 {
            case 0:
                fields[field, default: []].append(.varint(try varint()))
            case 2:
                let length = try varint()
                guard length <= UInt64(bytes.endIndex - position) else {
                    throw StoreError(.malformedRecord, "\(context): field \(field) runs past the end of the record")
                }
                let end = position + Int(length)
                fields[field, default: []].append(.bytes(Array(bytes[position..<end])))
                position = end
            default:
                throw StoreError(.malformedRecord, "\(context): field \(field) has unknown wire type \(key & 7)")
            }
        }
    }

    /// Reads a varint at `position`, moving past it.
    static func varint(_ bytes: ArraySlice<UInt8>, at position: inout Int, context: String) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.endIndex, shift < 64 else {
                throw StoreError(.malformedRecord, "\(context): truncated or overlong varint")
            }
            let byte = bytes[position]
            position += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    private func missing(_ field: Int, _ name: String) -> StoreError {
        StoreError(.malformedRecord, "\(context): required field \(field) (\(name)) is missing")
    }

    public func uint64(_ field: Int) -> UInt64? {
        if case .varint(let v) = fields[field]?.last { return v }
        return nil
    }

    public func int64(_ field: Int) -> Int64? {
        uint64(field).map { Int64(bitPattern: ($0 >> 1) ^ (0 &- ($0 & 1))) }
    }

    public func int(_ field: Int) -> Int? { int64(field).map { Int($0) } }

    public func bool(_ field: Int) -> Bool? { uint64(field).map { $0 != 0 } }

    public func string(_ field: Int) -> String? {
        if case .bytes(let b) = fields[field]?.last { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    public func bytes(_ field: Int) -> [UInt8]? {
        if case .bytes(let b) = fields[field]?.last { return b }
        return nil
    }

    public func map(_ field: Int) throws -> [String: String] {
        var result: [String: String] = [:]
        for case .bytes(let pair) in fields[field] ?? [] {
            let reader = try FieldReader(pair[...], context: context)
            guard let key = reader.string(1) else { throw missing(1, "map key") }
            result[key] = reader.string(2) ?? ""
        }
        return result
    }

    public func requiredString(_ field: Int, _ name: String) throws -> String {
        guard let v = string(field) else { throw missing(field, name) }
        return v
    }

    public func requiredInt(_ field: Int, _ name: String) throws -> Int {
        guard let v = int(field) else { throw missing(field, name) }
        return v
    }

    public func requiredInt64(_ field: Int, _ name: String) throws -> Int64 {
        guard let v = int64(field) else { throw missing(field, name) }
        return v
    }
}
