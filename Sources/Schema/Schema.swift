/// The SQL that defines the views, embedded at build time from the numbered files in `schema/`.
///
/// The files are applied in name order to an empty database. ``version`` fingerprints their exact
/// text: a `views.sqlite` built from different files is of another schema version and is rebuilt.
public enum Schema {
    /// One numbered schema file.
    public struct File: Sendable, Equatable {
        public let name: String
        public let sql: String
    }

    /// The schema files in the order they are applied.
    public static var files: [File] { embeddedFiles }

    /// A stable fingerprint of every schema file's name and text (FNV-1a, 64-bit, hex).
    public static let version: String = {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for file in embeddedFiles {
            for byte in Array(file.name.utf8) + [0] + Array(file.sql.utf8) + [0] {
                hash ^= UInt64(byte)
                hash = hash &* 0x100_0000_01b3
            }
        }
        return String(hash, radix: 16)
    }()
}
