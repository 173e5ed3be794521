import CLMDB

extension StoreError {
    /// Whether this error says the log's files are damaged: a damaged entry, or LMDB finding its
    /// file corrupted, missing a page it points to, or not an LMDB file at all, or a tree deeper
    /// than LMDB's cursors go (32 levels: only pages that point back up make one). (A meta page of
    /// another data version, `MDB_VERSION_MISMATCH`, is not taken for damage: a system LMDB of
    /// another major version says the same of a sound file, and the remedy for damage, giving up
    /// the member's log, would be wrong then. Its message says both.)
    public var isLogDamage: Bool {
        if code == .corruptEntry { return true }
        guard code == .lmdb, let index else { return false }
        return [MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_INVALID, MDB_CURSOR_FULL].contains(
            Int32(truncatingIfNeeded: Int64(bitPattern: index)))
    }
}
