import CLMDB
import Foundation

/// Checks that what LMDB hands back lies within the pages of the data file.
///
/// LMDB takes a node's size from its page without checking it against the page or the file. A
/// damaged size reaches past the file's end (a read there stops the process with SIGBUS) or past
/// the map (SIGSEGV). Reading a value through ``bytes(of:)`` turns that into a `corruptEntry` error
/// naming `data.mdb`.
extension LMDBEnvironment {
    /// The bytes of a key or value LMDB returned in a transaction that is still open, once they are
    /// known to lie within the pages the data file holds. A value outside the map altogether is in
    /// a page the open write transaction made dirty (LMDB keeps those in memory until the commit)
    /// and is taken as it is.
    func bytes(of value: MDB_val) throws -> UnsafeRawBufferPointer {
        let bytes = UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
        guard let start = value.mv_data, value.mv_size > 0, let mapStart = mappedAt else { return bytes }
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        let address = UInt(bitPattern: start)
        guard address >= mapStart, address - mapStart < UInt(info.me_mapsize) else { return bytes }
        let pagesEnd = UInt(info.me_last_pgno + 1) * UInt(pageSize)
        let offset = address - mapStart
        guard offset < pagesEnd, UInt(value.mv_size) <= pagesEnd - offset else {
            throw StoreError(
                .corruptEntry,
                "\(path)/data.mdb is damaged: a node of \(value.mv_size) bytes at byte \(offset) reaches past the \(pagesEnd) bytes its pages hold"
            )
        }
        return bytes
    }

    /// Where this process mapped `data.mdb`, from `/proc/self/maps`; nil when it cannot be told
    /// (another system, an unreadable file), and then values go unchecked. LMDB does not say: its
    /// `me_mapaddr` is only set for a fixed map.
    static func mapAddress(ofDataFileIn path: String) -> UInt? {
        guard let file = fopen("/proc/self/maps", "r") else { return nil }
        defer { fclose(file) }
        let dataFile = URL(fileURLWithPath: path + "/data.mdb").resolvingSymlinksInPath().path
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line).trimmingCharacters(in: .newlines)
            guard text.hasSuffix(" " + dataFile), let dash = text.firstIndex(of: "-") else { continue }
            return UInt(text[..<dash], radix: 16)
        }
        return nil
    }
}

extension StoreError {
    /// Whether this error says the log's files are damaged: a damaged entry, or LMDB finding its
    /// file corrupted, missing a page it points to, or not an LMDB file at all.
    public var isLogDamage: Bool {
        if code == .corruptEntry { return true }
        guard code == .lmdb, let index else { return false }
        return [MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID].contains(
            Int32(truncatingIfNeeded: Int64(bitPattern: index)))
    }
}
