/// The region got its id: a random number its first leader proposes once, which every member
/// then says first on every replication connection it opens and checks in every one it accepts
/// (`ConnectionHello`): a member of another region, with the same name and member ids, is told
/// apart by it. The first such record in the log wins; later ones (two leaders in a row proposed
/// one before either applied) change nothing. Fields: 10 region_id.
public struct RegionIdentified: Sendable, Equatable {
    /// The record's type tag in the log.
    static let tag: UInt64 = 11
    public var regionID: UInt64

    public init(regionID: UInt64) { self.regionID = regionID }

    init(_ f: FieldReader) throws {
        guard let id = f.uint64(10) else { throw StoreError(.malformedRecord, "region.identified without region_id") }
        regionID = id
    }

    func encode(into w: inout FieldWriter) { w.write(10, regionID) }

    /// The id as it is shown and kept in the views: 16 hexadecimal digits.
    public var described: String { Self.described(regionID) }

    /// A region id as it is shown (in logs, `dwcp cluster status`) and kept: 16 hexadecimal digits.
    public static func described(_ regionID: UInt64) -> String {
        let digits = String(regionID, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    var json: JSONValue { .object([("region_id", .string(described))]) }
}
