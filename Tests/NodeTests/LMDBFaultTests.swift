import Foundation
import TestSupport
import Testing

@testable import Store

/// A fault that LMDB's own walk of a damaged `data.mdb` takes (a node's offset past the file's
/// end: a Bus error; a page of the wrong kind: one of its assertions) cannot be turned into an
/// error, but the process says which file it was and what to do before it stops
/// (`LMDBFaultNote`).
@Suite struct LMDBFaultTests {
    /// Starts `dwcp dev` on a data directory whose log of 40 entries of 300 bytes `damage` changed
    /// (given the pages of its `data.mdb`), and returns the process once it has exited, and the file.
    func startDamaged(_ dir: TemporaryDirectory, damage: (inout LMDBPages) throws -> Void) async throws -> (
        DwcpProcess, String
    ) {
        let data = dir.file("data")
        do {
            let log = try LogStore(path: data + "/log")
            try await log.append(
                (1...40).map { LogEntry(index: $0, term: 1, payload: Array(repeating: 7, count: 300)) })
            try await log.checkpoint()
        }
        let file = data + "/log/data.mdb"
        var pages = try LMDBPages(file: file)
        try damage(&pages)
        try pages.write(to: file)
        let node = try DwcpProcess(
            ["dev", "--data-dir", data, "--api", "127.0.0.1:0", "--no-host-agent"], directory: dir)
        _ = try await node.waitForExit(timeout: .seconds(60))
        return (node, file)
    }

    @Test("a Bus error inside LMDB's walk of a damaged data.mdb names the file and the remedy before the process stops")
    func aFaultNamesTheFile() async throws {
        let dir = TemporaryDirectory()  // (Held to the end: its files hold the process's stderr.)
        let (node, file) = try await startDamaged(dir) { pages in
            let page = try #require(pages.pageOfLastEntry())
            // Every node of the page that holds the last entry sits 65,520 bytes into it: past the
            // end of the file (within the map), where opening the log reads the last entry's key.
            try #require((page + 16) * LMDBPages.pageSize > pages.bytes.count)
            pages.pointNodes(ofPage: page, at: 0xFFF0)
        }
        #expect(node.process.termination == .signalled(SIGBUS), "\(node.stderr)")
        #expect(
            node.stderr.contains("dwcp: stopped by a fault reading \(file), a log's LMDB file: the file is damaged"))
        #expect(node.stderr.contains("restore the data directory from a backup"))
    }

    @Test("an assertion LMDB fails on a damaged data.mdb (a leaf taken for a branch) names the file before it aborts")
    func anAssertionNamesTheFile() async throws {
        let dir = TemporaryDirectory()  // (Held to the end: its files hold the process's stderr.)
        let (node, file) = try await startDamaged(dir) { pages in
            let leaves = pages.entryLeaves()
            try #require(leaves.count >= 3)
            // A leaf in the middle marked a branch: reading every entry (as a node does as it
            // starts) steps into it from the one before.
            pages.setFlags(ofPage: leaves[1].page, 1)
        }
        guard node.stderr.contains("Assertion") else {
            // A liblmdb built without its assertions (NDEBUG) walks on instead: then the damage is
            // said some other way (an error, or the fault note), never not at all.
            print("LMDBFaultTests: this liblmdb asserted nothing; checking only that the damage was said")
            #expect(node.stderr.contains("damaged"), "\(node.stderr)")
            return
        }
        #expect(node.process.termination == .signalled(SIGABRT), "\(node.stderr)")
        #expect(node.stderr.contains("dwcp: LMDB stopped the process reading \(file), a log's LMDB file ("))
        #expect(node.stderr.contains("restore the data directory from a backup"))
    }

    @Test(
        "a segmentation fault in LMDB's code at an address outside the map (a node read across its page's end) names the file too"
    )
    func aFaultOutsideTheMapNamesTheFile() async throws {
        let dir = TemporaryDirectory()  // (Held to the end: its files hold the process's stderr.)
        let (node, file) = try await startDamaged(dir) { pages in
            let leaves = pages.entryLeaves()
            try #require(leaves.count >= 3)
            // Each node of a leaf 6 bytes before the page's end: its header runs into the next
            // page, whose bytes LMDB takes for the node's size and flags.
            pages.pointNodes(ofPage: leaves[1].page, at: UInt16(LMDBPages.pageSize - 6))
        }
        #expect(node.process.termination == .signalled(SIGSEGV), "\(node.stderr)")
        // Said as likely damage, not certain: a fault of dwcp's own would look the same.
        #expect(
            node.stderr.contains(
                "dwcp: stopped by a fault inside LMDB's code reading \(file), a log's LMDB file, at an address outside the file's map: most likely the file is damaged"
            ), "\(node.stderr)")
        #expect(node.stderr.contains("Check the file before emptying anything (mdb_stat -a"))
    }
}
