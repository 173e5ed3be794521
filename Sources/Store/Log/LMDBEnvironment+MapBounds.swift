import CLMDB
import Foundation

/// Checks that what LMDB hands back lies within the pages of the data file.
///
/// LMDB takes a node's size from its page without checking it against the page or the file. A
/// damaged size reaches past the file's end (a read there stops the process with SIGBUS) or past
/// the map (SIGSEGV). Reading a value through ``bytes(of:)`` turns that into a `corruptEntry` error
/// naming `data.mdb`.
extension LMDBEnvironment {
    /// The bytes of a key or value LMDB returned in a read transaction that is still open, once
    /// they are known to lie within the pages the data file holds. For read transactions only: a
    /// write transaction's value may sit in a page it made dirty (outside the map: taken as it is)
    /// or spilled to the file past the last committed page (refused).
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
