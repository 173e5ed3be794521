/// The first frame on every connection a member opens (message type 105): who dials, and the id
/// of the region it belongs to (``regionID(ofFirstMembership:)``). A member that belongs to
/// another region closes the connection, answering with its own hello so the dialler can say
/// why, and takes none of its frames: a member of another region with the same member ids whose
/// `--peer` (or membership) points here by mistake would otherwise be heard as one of this
/// region's members, and since every region's first entry has term 1, Raft's log matching would
/// even let its leader's entries replace this region's. Members before this type neither send nor
/// check it, and their connections are taken as before.
public struct ConnectionHello: Sendable, Equatable {
    public var from: String
    public var to: String
    public var regionID: UInt64

    public init(from: String, to: String, regionID: UInt64) {
        self.from = from
        self.to = to
        self.regionID = regionID
    }

    /// The id of the region whose first log entry is the membership `payload` (its encoding,
    /// canonical: every first member writes the same bytes from the same `--peer` list, and a
    /// member that joins later receives them). FNV-1a, 64 bits: a check against mistakes, not
    /// against an attacker (mutual TLS is that). Two regions started from the same `--peer`
    /// list, ids and addresses alike, have the same id.
    public static func regionID(ofFirstMembership payload: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "dwcp region\u{0}".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        for byte in payload { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    /// An id as it is shown: 16 hexadecimal digits.
    public static func described(_ regionID: UInt64) -> String {
        let digits = String(regionID, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
