import Foundation
import GRDB
import NIOCore
import NIOPosix
import Replication
import Store

extension ViewSnapshots {
    /// Cuts snapshot `index` into chunks of `chunkSize` bytes for `peer` and hands each to `send`,
    /// in order. Reads the file twice (its checksum first: every chunk carries it), one chunk at a
    /// time. `send` gives what tells when its chunk was written to the connection, if it was
    /// handed to one; at most `inFlight` such chunks wait at a time: a snapshot larger than the
    /// link can take at once waits here, on disk, instead of in the connection's buffer in memory
    /// (the whole file, before). The file is read on NIO's thread pool, a chunk at a time; the
    /// waits for writes hold no thread. A chunk whose write failed (the connection closed) ends
    /// the transfer with that error.
    func sendChunks(
        of index: UInt64, term: UInt64, from: String, to peer: String, chunkSize: Int = SnapshotChunk.size,
        inFlight: Int = ViewSnapshots.chunksInFlight, send: (SnapshotChunk) -> EventLoopFuture<Void>?
    ) async throws {
        let file = path(index)
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw NodeError(.unavailable, "snapshot \(index) is no longer here (a newer one replaced it)")
        }
        defer { try? handle.close() }
        let pool = NIOThreadPool.singleton
        let (checksum, total) = try await pool.runIfActive { () throws -> (UInt32, UInt64) in
            var checksum: UInt32 = 0
            var total: UInt64 = 0
            while let data = try handle.read(upToCount: SnapshotChunk.size), !data.isEmpty {
                checksum = CRC32C.checksum(Array(data), continuing: checksum)
                total += UInt64(data.count)
            }
            try handle.seek(toOffset: 0)
            return (checksum, total)
        }
        var offset: UInt64 = 0
        var writing: [EventLoopFuture<Void>] = []
        while let data = try await pool.runIfActive({ try handle.read(upToCount: chunkSize) }), !data.isEmpty {
            while writing.count >= inFlight { try await writing.removeFirst().get() }
            let written = send(
                SnapshotChunk(
                    from: from, to: peer, index: index, term: term, offset: offset, totalBytes: total,
                    checksum: checksum, data: Array(data)))
            if let written { writing.append(written) }
            offset += UInt64(data.count)
        }
        for written in writing { try await written.get() }
    }

    /// Chunks of a snapshot on their way to a member at a time (of ``SnapshotChunk/size``): enough
    /// to keep a link busy, 4 MiB of memory.
    static let chunksInFlight = 4

    /// Takes one chunk of a snapshot on its way here. Chunks arrive in order on one connection; a
    /// gap, a new snapshot or a checksum mismatch starts over, and a snapshot larger than the free
    /// space is refused at its first chunk. Returns true when the chunk completed an intact
    /// snapshot (``checkReceived(_:)``), now at `received-INDEX.sqlite`; Raft hears of nothing else,
    /// so a damaged file never replaces the log and the views.
    func receive(_ chunk: SnapshotChunk) -> Bool {
        let outcome: Result<Bool, NodeError> = incoming.withLock { incoming in
            if chunk.offset == 0 {
                if let previous = incoming {
                    // A leader of an earlier term (deposed, its sender still going) does not cut
                    // off the transfer of a later one's.
                    guard previous.term <= chunk.term else { return .success(false) }
                    // The transfer under way is given up, with what it had written.
                    close(previous.descriptor)
                    unlink(directory + "/incoming-\(previous.index).sqlite")
                }
                incoming = nil
                if let free = freeBytes(), chunk.totalBytes > free {
                    return .failure(
                        NodeError(
                            .unavailable,
                            "snapshot \(chunk.index) from \(chunk.from) (\(chunk.totalBytes) bytes) does not fit: \(free) bytes free in \(directory)"
                        ))
                }
                let path = directory + "/incoming-\(chunk.index).sqlite"
                let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                guard descriptor >= 0 else {
                    incoming = nil
                    return .failure(NodeError(.internal, "cannot create \(path): errno \(errno)"))
                }
                incoming = Incoming(
                    from: chunk.from, term: chunk.term, index: chunk.index, totalBytes: chunk.totalBytes,
                    checksum: chunk.checksum,
                    descriptor: descriptor)
            }
            guard var current = incoming, current.index == chunk.index, current.from == chunk.from,
                current.received == chunk.offset, current.totalBytes == chunk.totalBytes
            else {
                // A piece of a transfer that is not the one under way: the leader will start again.
                return .success(false)
            }
            let written = chunk.data.withUnsafeBytes { write(current.descriptor, $0.baseAddress, $0.count) }
            guard written == chunk.data.count else {
                close(current.descriptor)
                incoming = nil
                return .failure(NodeError(.internal, "writing snapshot \(chunk.index) failed: errno \(errno)"))
            }
            current.received += UInt64(chunk.data.count)
            current.runningChecksum = CRC32C.checksum(chunk.data, continuing: current.runningChecksum)
            guard current.received == current.totalBytes else {
                incoming = current
                return .success(false)
            }
            incoming = nil
            let synced = fsync(current.descriptor) == 0
            close(current.descriptor)
            let path = directory + "/incoming-\(chunk.index).sqlite"
            guard current.runningChecksum == current.checksum, synced else {
                try? FileManager.default.removeItem(atPath: path)
                return .failure(
                    NodeError(
                        .invalid, "snapshot \(chunk.index) from \(chunk.from) arrived damaged (checksum mismatch)"))
            }
            try? FileManager.default.removeItem(atPath: receivedPath(chunk.index))
            guard rename(path, receivedPath(chunk.index)) == 0 else {
                return .failure(NodeError(.internal, "cannot keep snapshot \(chunk.index): errno \(errno)"))
            }
            return .success(true)
        }
        switch outcome {
        case .success(false):
            return false
        case .success(true):
            do {
                try checkReceived(chunk.index)
            } catch {
                try? FileManager.default.removeItem(atPath: receivedPath(chunk.index))
                logger.warning("snapshot \(chunk.index) from \(chunk.from) is refused: \(error)")
                return false
            }
            logger.info("received views snapshot \(chunk.index) from \(chunk.from)")
            return true
        case .failure(let error):
            logger.warning("\(error.message)")
            return false
        }
    }

    /// Checks a snapshot that arrived whole before Raft hears of it: a views file SQLite reads
    /// through (`PRAGMA quick_check`), at the index it was sent as, of a schema this build
    /// installs (its own, or an earlier one it upgrades). The checksum only shows the bytes are
    /// the ones the leader sent.
    func checkReceived(_ index: UInt64) throws { try Self.check(path: receivedPath(index), index: index) }

    /// Checks snapshot `index` before it leaves this node, each time, as its receiver will
    /// (``checkReceived(_:)``), on NIO's thread pool (sending reads the file twice more). A file
    /// damaged on this disk, or gone while it is the log's snapshot, fails: the leader then takes
    /// a new one from its views rather than stream one that every member refuses, again after
    /// every back-off, until the next snapshot is due (100,000 entries by default).
    func checkBeforeSending(_ index: UInt64) async throws {
        let file = try existingPath(index)
        do {
            try await NIOThreadPool.singleton.runIfActive { try Self.check(path: file, index: index) }
        } catch let error as NodeError {
            let said = error.message.split(whereSeparator: \.isNewline).joined(separator: "; ")
            throw NodeError(.unavailable, "snapshot \(index) is damaged on this member (\(file)): \(said)")
        }
    }

    /// A snapshot file SQLite reads through (`PRAGMA quick_check`) that describes itself as the
    /// views at `index`, of a schema this build installs; an error in words otherwise.
    static func check(path: String, index: UInt64) throws {
        let queue: DatabaseQueue
        let problems: [String]
        do {
            queue = try readOnly(path)
            problems = try queue.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
        } catch {
            throw NodeError(.invalid, "it is not a views file SQLite can read", cause: error)
        }
        guard problems == ["ok"] else {
            throw NodeError(.invalid, "SQLite finds it damaged: \(problems.prefix(3).joined(separator: "; "))")
        }
        let description: Description
        do {
            description = try describe(path: path)
        } catch {
            throw NodeError(.invalid, "it does not describe itself as a views snapshot", cause: error)
        }
        guard description.index == index else {
            throw NodeError(.invalid, "it holds the views at index \(description.index), not \(index)")
        }
        guard ViewStore.installs(schemaVersion: description.schemaVersion) else {
            throw NodeError(
                .invalid,
                "its views schema version \(description.schemaVersion) is not one this dwcp (\(ViewStore.schemaVersion)) installs"
            )
        }
        if let stray = try strayValue(in: queue, of: path, index: index) { throw NodeError(.invalid, stray) }
    }

    /// The first value of the views file at `path` (at `index`) that the applier never writes
    /// (``ViewStore/strayValue(in:index:)``); nil when there is none.
    static func strayValue(inFile path: String, index: UInt64) throws -> String? {
        try strayValue(in: readOnly(path), of: path, index: index)
    }

    /// ``strayValue(inFile:index:)`` through `queue`, open on `path`.
    private static func strayValue(in queue: DatabaseQueue, of path: String, index: UInt64) throws -> String? {
        do {
            return try queue.read { db in try ViewStore.strayValue(in: db, index: index) }
        } catch {
            throw NodeError(.invalid, "the values of \(path) could not be read (\(error))", cause: error)
        }
    }

    /// The views file at `path`, opened read-only.
    static func readOnly(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabaseQueue(path: path, configuration: configuration)
    }

    /// The bytes free for an unprivileged writer where snapshots are received (nil if unknown).
    private func freeBytes() -> UInt64? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// Whether an intact snapshot at `index` has arrived and waits to be installed.
    func hasReceived(_ index: UInt64) -> Bool { FileManager.default.fileExists(atPath: receivedPath(index)) }
}
