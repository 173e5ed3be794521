/// The first frame on every connection a member opens (message type 105): who dials, and the id
/// of the region it belongs to, a random number the region's first leader proposed (the
/// `region.identified` record, kept in the views, so every member and every snapshot has it). A
/// member of another region (another id) is answered with this member's own hello and closed,
/// none of its frames taken: a member of another region with the same name and member ids, whose
/// `--peer` or membership points here by mistake, would otherwise be heard as one of this region's
/// members, and since every region's first entry has term 1, Raft's log matching would even let
/// its leader's entries replace this region's. A member that knows no id yet (a region before its
/// first leader's record applied, a member still catching up) says none and checks none, and
/// neither do members before this type: their connections are taken as before.
public struct ConnectionHello: Sendable, Equatable {
    public var from: String
    public var to: String
    public var regionID: UInt64
    /// The sender's replication address as its membership gives it ("" when it has none): a
    /// member that joins knows only its `--peer`s' addresses until it has the membership, and
    /// could not answer a leader added after them.
    public var address: String

    public init(from: String, to: String, regionID: UInt64, address: String = "") {
        self.from = from
        self.to = to
        self.regionID = regionID
        self.address = address
    }
}
