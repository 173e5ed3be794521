import CLMDB
import Foundation

/// Checks that what LMDB hands back lies within the pages of the data file.
///
/// LMDB takes a node's size from its page without checking it against the page or the file. A
/// damaged size reaches past the file's end (a read there stops the process with SIGBUS) or past
/// the map (SIGSEGV). Reading a value through ``PageBounds/bytes(of:)`` turns that into a
/// `corruptEntry` error naming `data.mdb`.
extension LMDBEnvironment {
    /// Where the file's pages lie in this process's memory, for checking the values a read
    /// transaction returns (taken once per transaction: `mdb_env_info` for each value would be
    /// work on every read's path).
    struct PageBounds {
        /// The map's first and past-the-end addresses (both 0 when the map was not found: then
        /// nothing is checked), and the end of the pages the file holds.
        let mapStart: UInt
        let mapEnd: UInt
        let pagesEnd: UInt
        let file: String

        /// The bytes of a key or value LMDB returned in a read transaction that is still open,
        /// once they are known to lie within the pages the data file holds. For read transactions
        /// only: a write transaction's value may sit in a page it made dirty (outside the map:
        /// taken as it is) or spilled to the file past the last committed page (refused).
        func bytes(of value: MDB_val) throws -> UnsafeRawBufferPointer {
            let bytes = UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size)
            guard let start = value.mv_data, value.mv_size > 0 else { return bytes }
            let address = UInt(bitPattern: start)
            guard address >= mapStart, address < mapEnd else { return bytes }
            guard address < pagesEnd, UInt(value.mv_size) <= pagesEnd - address else {
                throw StoreError(
                    .corruptEntry,
                    "\(file) is damaged: a node of \(value.mv_size) bytes at byte \(address - mapStart) reaches past the \(pagesEnd - mapStart) bytes its pages hold"
                )
            }
            return bytes
        }
    }

    /// The bounds of the pages as they are now (read inside a transaction).
    func pageBounds() -> PageBounds {
        guard let mapStart = mappedAt else { return PageBounds(mapStart: 0, mapEnd: 0, pagesEnd: 0, file: "") }
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return PageBounds(
            mapStart: mapStart, mapEnd: mapStart + UInt(info.me_mapsize),
            pagesEnd: mapStart + UInt(info.me_last_pgno + 1) * UInt(pageSize), file: path + "/data.mdb")
    }

    /// Where this process mapped `data.mdb`, from `/proc/self/maps`: the mapping of that file that
    /// holds `probe` (an address LMDB returned), or the only one when there is no probe; nil when
    /// it cannot be told (several mappings of the file and no probe, another system, an unreadable
    /// file), and then values go unchecked. LMDB does not say: its `me_mapaddr` is only set for a
    /// fixed map.
    static func mapAddress(ofDataFileIn path: String, containing probe: UInt?) -> UInt? {
        guard let file = fopen("/proc/self/maps", "r") else { return nil }
        defer { fclose(file) }
        let dataFile = URL(fileURLWithPath: path + "/data.mdb").resolvingSymlinksInPath().path
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        var mappings: [(start: UInt, end: UInt)] = []
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line).trimmingCharacters(in: .newlines)
            guard text.hasSuffix(" " + dataFile), let range = text.split(separator: " ").first else { continue }
            let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
            if bounds.count == 2 { mappings.append((bounds[0], bounds[1])) }
        }
        if let probe { return mappings.first { probe >= $0.start && probe < $0.end }?.start }
        return mappings.count == 1 ? mappings[0].start : nil
    }

    /// An address in the current map: the first key of LMDB's main database (the names of the
    /// databases opened), read in a transaction of its own; nil while there is none.
    func addressInTheMap() -> UInt? {
        var txn: OpaquePointer?
        guard mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn) == 0 else { return nil }
        defer { mdb_txn_abort(txn) }
        var main: MDB_dbi = 0
        guard mdb_dbi_open(txn, nil, 0, &main) == 0 else { return nil }
        var cursor: OpaquePointer?
        guard mdb_cursor_open(txn, main, &cursor) == 0 else { return nil }
        defer { mdb_cursor_close(cursor) }
        var key = MDB_val()
        var value = MDB_val()
        guard mdb_cursor_get(cursor, &key, &value, MDB_FIRST) == 0, let start = key.mv_data else { return nil }
        return UInt(bitPattern: start)
    }
}
