#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The space left on the filesystem that holds a path. A node whose disk fills stops (it cannot
/// append to its log or apply to its views); this is what lets its errors, warnings and metrics
/// say so, instead of an LMDB "Input/output error" or SQLite's "database or disk is full" alone.
public struct DiskSpace: Sendable, Equatable {
    /// What this process may still write: the blocks free to anyone, and, for root, the blocks
    /// the filesystem reserves for root too (ext4 keeps 5 % back from other users).
    public var availableBytes: UInt64
    public var totalBytes: UInt64

    public init(availableBytes: UInt64, totalBytes: UInt64) {
        self.availableBytes = availableBytes
        self.totalBytes = totalBytes
    }

    /// The filesystem holding `path` as it is now; nil when `path` cannot be looked up.
    public static func of(_ path: String) -> DiskSpace? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        let blocks = geteuid() == 0 ? info.f_bfree : info.f_bavail
        return DiskSpace(
            availableBytes: UInt64(blocks) * UInt64(info.f_frsize),
            totalBytes: UInt64(info.f_blocks) * UInt64(info.f_frsize))
    }

    /// Less than 16 MiB left, or less than 1 % up to 1 GiB: a write that failed for space or I/O
    /// there is put down to the full disk.
    public var isNearlyFull: Bool { availableBytes < max(16 << 20, min(totalBytes / 100, 1 << 30)) }

    /// Less than 5 % or 256 MiB left: a running node warns (``isNearlyFull`` comes soon after).
    public var isRunningLow: Bool { availableBytes < 256 << 20 || availableBytes < totalBytes / 20 }

    /// "47.9 MiB free of 48.0 MiB".
    public var described: String { "\(Self.format(availableBytes)) free of \(Self.format(totalBytes))" }

    /// What to add to `error`'s message when it is one a full disk causes (no space, a failed
    /// write: LMDB reports a short write as an I/O error, SQLite says "database or disk is full"
    /// or an I/O error) and the filesystem holding `path` is nearly full, in words an operator can
    /// act on; nil otherwise (a lock held, damage, a refusal: the failure is something else).
    public static func blame(_ error: any Error, at path: String) -> String? {
        let text = "\(error)"
        let markers = [
            "disk is full", "No space left", "Input/output error", "SQLite error 13", "SQLite error 10", "MDB_MAP_FULL",
            "Disk quota exceeded",
        ]
        guard markers.contains(where: text.contains), let space = of(path), space.isNearlyFull else { return nil }
        return "the filesystem holding \(path) is full (\(space.described))"
    }

    /// A size in the binary units `ByteSize` reads: "0 B", "512 KiB", "47.9 MiB", "1.2 GiB".
    public static func format(_ bytes: UInt64) -> String {
        let units: [(String, UInt64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        for (suffix, factor) in units where bytes >= factor {
            let tenths = (bytes * 10 + factor / 2) / factor
            return tenths % 10 == 0 || tenths >= 10_000
                ? "\(tenths / 10) \(suffix)" : "\(tenths / 10).\(tenths % 10) \(suffix)"
        }
        return "\(bytes) B"
    }
}
