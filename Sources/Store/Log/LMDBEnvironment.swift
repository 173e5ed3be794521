import CLMDB
import Foundation

/// A thin owner of one LMDB environment: opening, named databases, read and write transactions,
/// and growing the memory map when a write finds it full.
///
/// Reads may run on any thread (the environment is opened with `MDB_NOTLS`). Writes must come from
/// one thread at a time; ``LogStore`` funnels them through its writer thread. Growing the map needs
/// every transaction of this process closed, so transactions hold a shared lock and growth an
/// exclusive one.
final class LMDBEnvironment: @unchecked Sendable {
    let env: OpaquePointer
    private let resizeLock: UnsafeMutablePointer<pthread_rwlock_t>
    let path: String
    /// The largest map the environment may grow to.
    let maximumMapSize: Int
    /// The size of LMDB's pages in the data file (read once it is open).
    private(set) var pageSize = 4096
    /// Where `data.mdb` is mapped (``mapAddress(ofDataFileIn:)``); set at the open and after every
    /// growth, under the exclusive lock, and read inside transactions.
    private(set) var mappedAt: UInt? = nil

    init(path: String, initialMapSize: Int, maximumMapSize: Int = 1 << 40, maxDatabases: Int = 16) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        var env: OpaquePointer?
        try Self.check(mdb_env_create(&env), "mdb_env_create")
        guard let env else { throw StoreError(.lmdb, "mdb_env_create returned no environment") }
        self.env = env
        self.path = path
        self.maximumMapSize = maximumMapSize
        resizeLock = .allocate(capacity: 1)
        pthread_rwlock_init(resizeLock, nil)
        // Every stored property is set: a throw from here on runs deinit, which closes and frees.
        _ = mdb_env_set_assert(env, LMDBFaultNote.assertionFailed)
        try Self.check(mdb_env_set_maxdbs(env, MDB_dbi(maxDatabases)), "mdb_env_set_maxdbs")
        try Self.check(mdb_env_set_mapsize(env, initialMapSize), "mdb_env_set_mapsize")
        try Self.check(mdb_env_open(env, path, UInt32(MDB_NOTLS), 0o644), "mdb_env_open \(path)")
        try Self.extendShortFile(env, path: path)
        var stat = MDB_stat()
        mdb_env_stat(env, &stat)
        pageSize = Int(stat.ms_psize)
        watchMap()
    }

    /// Finds where `data.mdb` is mapped now, for ``pageBounds()`` and ``LMDBFaultNote``. Called
    /// with no transaction of this process open: at the open, under the exclusive lock after a
    /// database is opened while the map is still unknown, and after the map grew.
    private func watchMap() {
        mappedAt = Self.mapAddress(ofDataFileIn: path, containing: addressInTheMap())
        if let mappedAt {
            LMDBFaultNote.register(ObjectIdentifier(self), start: mappedAt, size: mapSize, file: path + "/data.mdb")
        } else {
            LMDBFaultNote.unregister(ObjectIdentifier(self))
        }
    }

    /// Extends a data file shorter than the pages its meta page counts with zeros. LMDB maps the
    /// file, and a read of a page past its end stops the process with SIGBUS; a zeroed page is one
    /// LMDB reports as corrupted instead. A file may be shorter without damage (LMDB does not
    /// write a page a transaction allocated and freed again; such pages are free and never read),
    /// so the shortfall is not refused here: if the file was cut short, reading the log says so.
    private static func extendShortFile(_ env: OpaquePointer, path: String) throws {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(env, &info)
        mdb_env_stat(env, &stat)
        let file = path + "/data.mdb"
        guard let size = (try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? Int else { return }
        let needed = (info.me_last_pgno + 1) * Int(stat.ms_psize)
        guard size < needed else { return }
        guard truncate(file, off_t(needed)) == 0 else {
            throw StoreError(
                .lmdb,
                "\(file) is \(size) bytes, shorter than the \(needed) its pages need, and cannot be extended: errno \(errno)"
            )
        }
    }

    deinit {
        LMDBFaultNote.unregister(ObjectIdentifier(self))
        mdb_env_close(env)
        pthread_rwlock_destroy(resizeLock)
        resizeLock.deallocate()
    }

    /// The current size of the memory map in bytes.
    var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_mapsize
    }

    /// Opens (creating if needed) a named database.
    func openDatabase(named name: String) throws -> MDB_dbi {
        let dbi = try write { txn in
            var dbi: MDB_dbi = 0
            try Self.check(mdb_dbi_open(txn, name, UInt32(MDB_CREATE), &dbi), "mdb_dbi_open \(name)")
            return dbi
        }
        // A new file's map is found by the key the first database gives the main database (its
        // only mapping was taken at the open, unless the process held another of the file).
        if mappedAt == nil {
            pthread_rwlock_wrlock(resizeLock)
            defer { pthread_rwlock_unlock(resizeLock) }
            watchMap()
        }
        return dbi
    }

    /// Runs `body` in a read-only transaction.
    func read<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        pthread_rwlock_rdlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txn), "mdb_txn_begin (read)")
        defer { mdb_txn_abort(txn) }
        return try body(txn!)
    }

    /// Runs `body` in a write transaction and commits it, synced.
    /// When the map is full, the transaction is abandoned, the map doubled and `body` run again.
    func write<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        while true {
            do {
                return try writeOnce(body)
            } catch let error as StoreError
                where error.code == .lmdb && error.index == UInt64(bitPattern: Int64(MDB_MAP_FULL))
            {
                try grow()
            }
        }
    }

    private func writeOnce<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        pthread_rwlock_rdlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        var txn: OpaquePointer?
        try Self.check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin (write)")
        let result: T
        do {
            result = try body(txn!)
        } catch {
            mdb_txn_abort(txn)
            throw error
        }
        try Self.check(mdb_txn_commit(txn), "mdb_txn_commit")
        return result
    }

    /// Doubles the memory map. Waits until no transaction of this process is open.
    private func grow() throws {
        pthread_rwlock_wrlock(resizeLock)
        defer { pthread_rwlock_unlock(resizeLock) }
        let current = mapSize
        guard current < maximumMapSize else {
            throw StoreError(.lmdb, "the log is full: its map reached the maximum of \(maximumMapSize) bytes")
        }
        try Self.check(mdb_env_set_mapsize(env, min(current * 2, maximumMapSize)), "mdb_env_set_mapsize")
        watchMap()
    }

    /// Throws a ``StoreError`` for a non-zero LMDB return code. The LMDB code travels in `index`
    /// so callers can recognise `MDB_MAP_FULL` and `MDB_NOTFOUND`.
    static func check(_ rc: Int32, _ what: String) throws {
        guard rc != 0 else { return }
        var reason = String(cString: mdb_strerror(rc))
        if rc == MDB_VERSION_MISMATCH {
            reason +=
                " (data.mdb's meta pages name another data version than this LMDB's, \(String(cString: mdb_version(nil, nil, nil))): a damaged byte in them, or a file written by another major version of LMDB; the log is left as it is)"
        }
        throw StoreError(.lmdb, "\(what): \(reason)", index: UInt64(bitPattern: Int64(rc)))
    }
}

/// Typed helpers for keys and values inside a transaction.
extension LMDBEnvironment {
    func get(_ txn: OpaquePointer, _ dbi: MDB_dbi, key: [UInt8]) throws -> [UInt8]? {
        var keyBytes = key
        return try keyBytes.withUnsafeMutableBytes { keyBuffer in
            var k = MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
            var v = MDB_val()
            let rc = mdb_get(txn, dbi, &k, &v)
            if rc == MDB_NOTFOUND { return nil }
            try Self.check(rc, "mdb_get")
            return Array(try pageBounds().bytes(of: v))
        }
    }

    static func put(_ txn: OpaquePointer, _ dbi: MDB_dbi, key: [UInt8], value: [UInt8], flags: Int32 = 0) throws {
        // LMDB copies the key and value and never writes through these pointers (no MDB_RESERVE).
        try key.withUnsafeBytes { keyBuffer in
            try value.withUnsafeBytes { valueBuffer in
                var k = MDB_val(
                    mv_size: keyBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: keyBuffer.baseAddress))
                var v = MDB_val(
                    mv_size: valueBuffer.count, mv_data: UnsafeMutableRawPointer(mutating: valueBuffer.baseAddress))
                try check(mdb_put(txn, dbi, &k, &v, UInt32(flags)), "mdb_put")
            }
        }
    }

    static func delete(_ txn: OpaquePointer, _ dbi: MDB_dbi, key: [UInt8]) throws {
        var keyBytes = key
        try keyBytes.withUnsafeMutableBytes { keyBuffer in
            var k = MDB_val(mv_size: keyBuffer.count, mv_data: keyBuffer.baseAddress)
            let rc = mdb_del(txn, dbi, &k, nil)
            if rc == MDB_NOTFOUND { return }
            try check(rc, "mdb_del")
        }
    }
}
