/// A member telling another how its region was founded: a digest of the ids in the first entry of
/// the region's log, the membership its first members were started with (their `--peer` lists).
/// Every first member of a region writes that entry itself, at index 1 and term 1, so a member
/// started with a member more or fewer in its list, or alone, holds another first entry that
/// Raft's log matching cannot tell from the others' (it compares terms). A member that hears
/// another founding ignores that member's Raft messages, as it would a member started in another
/// region (``MemberRegion``). Only the ids count: an address written otherwise (a name for an IP,
/// another case, a member's own address taken from its `--listen`) reaches the same member, and
/// the region's first membership change writes the addresses anew. Sent with ``MemberRegion``;
/// members before this type skip it; a member that does not know its founding (it joined after
/// the first entry was compacted away, or its log was compacted before this type) sends an
/// empty one, which clears what it said before. The sender also says its replication address,
/// as its membership gives it: what a node of the same id elsewhere says (a member of another
/// region named alike) is not taken for the member's.
public struct MemberFounding: Sendable, Equatable {
    public var from: String
    public var to: String
    /// The digest, 16 hexadecimal digits (``digest(of:)``); empty when the sender does not know it.
    public var founding: String
    /// The sender's replication address.
    public var address: String

    public init(from: String, to: String, founding: String, address: String) {
        self.from = from
        self.to = to
        self.founding = founding
        self.address = address
    }

    /// The founding digest of a region whose first membership is `membership` (FNV-1a, 64 bits,
    /// over its voters' ids, then its learners', each sorted): equal for members started with the
    /// same members, whatever their addresses, and different for another set.
    public static func digest(of membership: RaftMembership) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let text =
            "v " + membership.voters.keys.sorted().joined(separator: " ") + "\nl "
            + membership.learners.keys.sorted().joined(separator: " ")
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
