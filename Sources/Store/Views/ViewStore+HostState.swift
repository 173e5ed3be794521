import GRDB
import Schema

extension ViewStore {
    /// Whether views of schema `version` apply `host.state_reported` records: views of 011 or
    /// later that this build knows (as ``knowsHistoryCompaction(schemaVersion:)``).
    public static func knowsHostState(schemaVersion version: String) -> Bool {
        schemaVersion(version, holdsFirst: hostStateFileCount)
    }

    /// How many schema files the views need for `host.state_reported` records (up to 011).
    static let hostStateFileCount = 11
}
