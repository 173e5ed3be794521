import GRDB
import Schema

extension ViewStore {
    /// The region's id (`region.identified`, the first one applied); nil before one has applied.
    public static func regionID(_ db: Database) throws -> UInt64? {
        let text = try String.fetchOne(db.cachedStatement(sql: "SELECT region_id FROM dwcp_state WHERE id = 1"))
        return text.flatMap { UInt64($0, radix: 16) }
    }

    /// Whether views of schema `version` apply `region.identified` records: views of 010 or later
    /// that this build knows (as ``knowsHistoryCompaction(schemaVersion:)``).
    public static func knowsRegionIdentity(schemaVersion version: String) -> Bool {
        schemaVersion(version, holdsFirst: regionIdentityFileCount)
    }

    /// How many schema files the views need for `region.identified` records (up to 010).
    static let regionIdentityFileCount = 10
}
