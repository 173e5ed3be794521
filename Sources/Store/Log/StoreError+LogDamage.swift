import CLMDB

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
