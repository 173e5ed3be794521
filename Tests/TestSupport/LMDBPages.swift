import Foundation

/// The pages of a log's LMDB file (`data.mdb`, 4 KiB pages), read whole, to damage as a disk would.
///
/// LMDB's page header is its number (8 bytes), a pad, its flags (1 branch, 2 leaf, 8 meta), and
/// the `lower` and `upper` bounds of its free space (2 bytes each); the offsets of its nodes follow
/// from byte 16. A node starts with two 16-bit halves (a leaf's data size, a branch's child page
/// number), its flags and its key's size, then the key.
public struct LMDBPages {
    public static let pageSize = 4096
    public var bytes: [UInt8]

    public init(file: String) throws {
        bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    public func write(to file: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: file))
    }

    public var count: Int { bytes.count / Self.pageSize }

    func word(at offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }

    mutating func setWord(_ value: UInt16, at offset: Int) {
        bytes[offset] = UInt8(value & 0xff)
        bytes[offset + 1] = UInt8(value >> 8)
    }

    public func flags(ofPage page: Int) -> UInt16 { word(at: page * Self.pageSize + 10) }

    /// The byte offsets in the file of the nodes of `page`.
    public func nodes(ofPage page: Int) -> [Int] {
        let base = page * Self.pageSize
        return (0..<((Int(word(at: base + 12)) - 16) / 2)).map { base + Int(word(at: base + 16 + 2 * $0)) }
    }

    /// The size of the key of the node at `node`.
    public func keySize(ofNode node: Int) -> Int { Int(word(at: node + 6)) }

    /// Sets the first four bytes of the node at `node`: a leaf's data size, a branch's child.
    public mutating func setHalves(ofNode node: Int, _ low: UInt16, _ high: UInt16) {
        setWord(low, at: node)
        setWord(high, at: node + 2)
    }

    /// Points every node offset of `page` at `offset` within the page.
    public mutating func pointNodes(ofPage page: Int, at offset: UInt16) {
        let base = page * Self.pageSize
        for slot in 0..<((Int(word(at: base + 12)) - 16) / 2) { setWord(offset, at: base + 16 + 2 * slot) }
    }

    /// The leaf pages that hold log entries, by the first index each holds.
    public func entryLeaves() -> [(firstIndex: UInt64, page: Int)] {
        var leaves: [(firstIndex: UInt64, page: Int)] = []
        for page in 2..<count where flags(ofPage: page) == 2 {
            let indexes = nodes(ofPage: page).compactMap { node -> UInt64? in
                guard keySize(ofNode: node) == 8, bytes[node + 8] == 0 else { return nil }
                return bytes[(node + 8)..<(node + 16)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            if let first = indexes.min() { leaves.append((first, page)) }
        }
        return leaves.sorted { $0.firstIndex < $1.firstIndex }
    }

    /// Sets the flags of `page` (1 branch, 2 leaf).
    public mutating func setFlags(ofPage page: Int, _ flags: UInt16) { setWord(flags, at: page * Self.pageSize + 10) }

    /// The leaf page that holds the log's last entry: the largest 8-byte key that reads as a log
    /// index (big-endian, its top byte 0; the meta records' keys are words).
    public func pageOfLastEntry() -> Int? { entryLeaves().last?.page }
}
