/// A member telling another how its region was founded: a digest of the first entry of the
/// region's log, the membership its first members were started with (their `--peer` lists).
/// Every first member of a region writes that entry itself, at index 1 and term 1, so a member
/// started with another `--peer` list (an address mistyped, a member more or fewer, itself alone)
/// holds another first entry that Raft's log matching cannot tell from the others' (it compares
/// terms). A member that hears another founding ignores that member's Raft messages, as it would
/// a member started in another region (``MemberRegion``). Sent with ``MemberRegion``; members
/// before this type skip it, and a member that does not know its founding (it joined after the
/// first entry was compacted away, or its directory predates this type) sends none. The sender
/// also says its replication address, as its membership gives it: what a node of the same id
/// elsewhere says (a member of another region named alike) is not taken for the member's.
public struct MemberFounding: Sendable, Equatable {
    public var from: String
    public var to: String
    /// The digest, 16 hexadecimal digits (``digest(ofFirstEntry:)``).
    public var founding: String
    /// The sender's replication address.
    public var address: String

    public init(from: String, to: String, founding: String, address: String) {
        self.from = from
        self.to = to
        self.founding = founding
        self.address = address
    }

    /// The founding digest of a region whose log's first entry holds `payload` (FNV-1a, 64 bits):
    /// equal for members started alike, and different for another membership.
    public static func digest(ofFirstEntry payload: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in payload { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
