import GRDB

extension ViewStore {
    /// Writes a copy of the views as they are to a new file at `path`, synced, and returns the
    /// applied index it holds. The copy is SQLite's `VACUUM INTO`: the live rows only, without
    /// the pages that deletes freed, so history that `history.compacted` records removed does not
    /// weigh on a views snapshot. It reads in one read transaction of its own, on a reader
    /// connection with none open (GRDB's `unsafeRead`): writers go on meanwhile. The copy is
    /// written, synced and read back on GRDB's reader queue, off the caller's thread. Views found
    /// damaged on the way are marked for a rebuild at the next start.
    public func copy(to path: String) async throws -> UInt64 {
        try await markingDamage { try await copyUnmarked(to: path) }
    }

    private func copyUnmarked(to path: String) async throws -> UInt64 {
        try await pool.unsafeRead { db in
            do {
                try db.execute(sql: "VACUUM INTO ?", arguments: [path])
            } catch {
                throw StoreError(.views, "cannot copy the views to \(path): \(error)", cause: error)
            }
            try Self.syncFile(path)
            var readOnly = Configuration()
            readOnly.readonly = true
            return try DatabaseQueue(path: path, configuration: readOnly).read(Self.appliedIndex)
        }
    }
}
