import GRDB
import Schema

extension ViewStore {
    /// Whether views of schema `version` apply `host.evacuated` records: views of 012 or later
    /// that this build knows (as ``knowsHostState(schemaVersion:)``).
    public static func knowsHostEvacuation(schemaVersion version: String) -> Bool {
        schemaVersion(version, holdsFirst: hostEvacuationFileCount)
    }

    /// How many schema files the views need for `host.evacuated` records (up to 012).
    static let hostEvacuationFileCount = 12
}
