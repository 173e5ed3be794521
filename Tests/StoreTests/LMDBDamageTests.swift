import Foundation
import TestSupport
import Testing

@testable import Store

/// A data.mdb damaged behind the store's back is refused with an error naming it, never read past
/// its pages (a Bus error or a segmentation fault) and never taken for an empty log.
@Suite struct LMDBDamageTests {
    /// A closed log of 40 entries of 300 bytes: several leaf pages under one branch page.
    func closedLog(_ dir: TemporaryDirectory) async throws -> String {
        let path = dir.file("log")
        let log = try LogStore(path: path)
        try await log.append((1...40).map { LogEntry(index: $0, term: 1, payload: Array(repeating: 7, count: 300)) })
        try await log.checkpoint()
        // Without the map's address values go unchecked, and the damage below would stop the
        // test process rather than fail a test.
        try #require(log.environment.mappedAt != nil, "the map of \(path)/data.mdb was not found in /proc/self/maps")
        return path
    }

    /// Sets the first two 16-bit halves (a leaf's data size, a branch's child page) of every
    /// node in the pages of `pageFlags`, of keys of `keySize` bytes when given.
    func damageNodes(in path: String, pageFlags: UInt16, keySize: Int?, with halves: (UInt16, UInt16)) throws {
        var pages = try LMDBPages(file: path + "/data.mdb")
        var damaged = 0
        for page in 2..<pages.count where pages.flags(ofPage: page) == pageFlags {
            for node in pages.nodes(ofPage: page) where keySize == nil || pages.keySize(ofNode: node) == keySize {
                pages.setHalves(ofNode: node, halves.0, halves.1)
                damaged += 1
            }
        }
        #expect(damaged > 0)
        try pages.write(to: path + "/data.mdb")
    }

    @Test("an entry whose size reaches past the file is refused as damage to data.mdb, not read")
    func sizePastTheFile() async throws {
        let dir = TemporaryDirectory()
        let path = try await closedLog(dir)
        // Leaf pages (flags 2) of the entries (8-byte keys): every entry 1.9 GB long.
        try damageNodes(in: path, pageFlags: 2, keySize: 8, with: (0, 0x7000))
        #expect {
            _ = try LogStore(path: path)
        } throws: { error in
            (error as? StoreError)?.code == .corruptEntry
                && "\(error)".contains("data.mdb is damaged: a node of 1879048192 bytes")
        }
    }

    @Test("a branch pointing at a page the file does not have is an error reading the log, not an empty log")
    func childPastTheFile() async throws {
        let dir = TemporaryDirectory()
        let path = try await closedLog(dir)
        // The entries' branch page (flags 1): every child is page 5000.
        try damageNodes(in: path, pageFlags: 1, keySize: nil, with: (5000, 0))
        #expect {
            _ = try LogStore(path: path)
        } throws: { error in
            (error as? StoreError)?.code == .lmdb && "\(error)".contains("reading the log's last entry in data.mdb")
        }
    }

    @Test(
        "a byte damaged in a meta page's version is refused with both readings of LMDB's MDB_VERSION_MISMATCH: damage, or another LMDB"
    )
    func metaPageVersion() async throws {
        for offset in [20, 4096 + 20] {
            let dir = TemporaryDirectory()
            let path = try await closedLog(dir)
            let file = try FileHandle(forUpdating: URL(fileURLWithPath: path + "/data.mdb"))
            try file.seek(toOffset: UInt64(offset))
            let byte = try #require(try file.read(upToCount: 1)?.first)
            try file.seek(toOffset: UInt64(offset))
            try file.write(contentsOf: [byte ^ 0xFF])
            try file.close()
            #expect {
                _ = try LogStore(path: path)
            } throws: { error in
                "\(error)".contains("MDB_VERSION_MISMATCH")
                    && "\(error)".contains("a damaged byte in them, or a file written by another major version of LMDB")
            }
        }
    }
}
