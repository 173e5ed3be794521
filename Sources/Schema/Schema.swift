/// The SQL that defines the views, embedded at build time from the numbered files in `schema/`.
///
/// The files are applied in name order to an empty database. ``version`` fingerprints their exact
/// text. The files are append-only: a change to the views is a new file, never an edit of a file
/// a dwcp has shipped, so the views of an earlier build are a prefix of this build's files and
/// are brought up to date by applying the rest (``filesToUpgrade(from:)``).
public enum Schema {
    /// One numbered schema file.
    public struct File: Sendable, Equatable {
        public let name: String
        public let sql: String
    }

    /// The schema files in the order they are applied.
    public static var files: [File] { embeddedFiles }

    /// A stable fingerprint of every schema file's name and text (FNV-1a, 64-bit, hex).
    public static var version: String { prefixVersions[embeddedFiles.count] }

    /// The version of views built from only the first `count` files: what a dwcp that had only
    /// those files wrote into `dwcp_state.schema_version`.
    public static func version(ofFirst count: Int) -> String { prefixVersions[count] }

    /// `version(ofFirst:)` for every count from 0 to all the files, hashed in one pass.
    private static let prefixVersions: [String] = {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var versions = [String(hash, radix: 16)]
        for file in embeddedFiles {
            for byte in Array(file.name.utf8) + [0] + Array(file.sql.utf8) + [0] {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
            versions.append(String(hash, radix: 16))
        }
        return versions
    }()

    /// How many files the oldest views this build can upgrade were built from (001–005, every
    /// landed dwcp since 2026-12-02; not the unlanded commits between 55e54a9 and 98840eb, which
    /// edited 003). Each file after them adds its tables and columns and fills them in
    /// for the rows already there exactly as the applier would have (SchemaUpgradeTests checks
    /// this), so upgraded views equal views rebuilt from the whole log, on every member. Views
    /// older than this are rebuilt from the log.
    public static let oldestUpgradableCount = 5

    /// The files that bring views of schema `version` up to this build's, in order: none when it
    /// is this build's; nil when it is neither this build's nor an upgradable earlier one (views
    /// of a newer dwcp, of an edited file, or older than ``oldestUpgradableCount``).
    public static func filesToUpgrade(from version: String) -> ArraySlice<File>? {
        for count in stride(from: embeddedFiles.count, through: oldestUpgradableCount, by: -1)
        where Self.version(ofFirst: count) == version {
            return embeddedFiles[count...]
        }
        return nil
    }
}
