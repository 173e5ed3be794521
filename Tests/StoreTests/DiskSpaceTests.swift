import Testing

@testable import Store

/// How a node words and counts a filling disk: sizes, the thresholds, and failed checkpoints told
/// without flooding the log.
@Suite struct DiskSpaceTests {
    @Test("sizes are written in the binary units the flags read")
    func sizes() {
        #expect(DiskSpace.format(0) == "0 B")
        #expect(DiskSpace.format(1023) == "1023 B")
        #expect(DiskSpace.format(1024) == "1 KiB")
        #expect(DiskSpace.format(12 << 20) == "12 MiB")
        #expect(DiskSpace.format((48 << 20) - (100 << 10)) == "47.9 MiB")
        #expect(DiskSpace.format(3 << 40) == "3 TiB")
        #expect(DiskSpace(availableBytes: 0, totalBytes: 12 << 20).described == "0 B free of 12 MiB")
    }

    @Test("nearly full under 16 MiB or 1 % up to 1 GiB; running low under 5 % or 256 MiB")
    func thresholds() {
        let terabyte: UInt64 = 1 << 40
        #expect(DiskSpace(availableBytes: 15 << 20, totalBytes: terabyte).isNearlyFull)
        #expect(DiskSpace(availableBytes: 1000 << 20, totalBytes: terabyte).isNearlyFull)
        #expect(!DiskSpace(availableBytes: terabyte / 101, totalBytes: terabyte).isNearlyFull)
        #expect(DiskSpace(availableBytes: (40 << 30) / 101, totalBytes: 40 << 30).isNearlyFull)
        #expect(!DiskSpace(availableBytes: (40 << 30) / 99, totalBytes: 40 << 30).isNearlyFull)
        #expect(DiskSpace(availableBytes: terabyte / 99, totalBytes: terabyte).isRunningLow)
        #expect(DiskSpace(availableBytes: 200 << 20, totalBytes: 1 << 30).isRunningLow)
        #expect(!DiskSpace(availableBytes: terabyte / 10, totalBytes: terabyte).isRunningLow)
    }

    @Test("a real filesystem is read; a path that is not there blames nothing")
    func readings() throws {
        let root = try #require(DiskSpace.of("/"))
        #expect(root.totalBytes > 0 && root.availableBytes <= root.totalBytes)
        #expect(DiskSpace.of("/no/such/dwcp/path") == nil)
        struct Failure: Error, CustomStringConvertible { let description: String }
        #expect(DiskSpace.blame(Failure(description: "database or disk is full"), at: "/no/such/dwcp/path") == nil)
        // Only an error a full disk causes is put down to it, however full the disk.
        #expect(DiskSpace.blame(Failure(description: "the data directory is locked by pid 7"), at: "/") == nil)
    }

    @Test("failed checkpoints: the first told at once, then one line per 10 s with the count, and the recovery")
    func checkpointTrouble() {
        var trouble = CheckpointTrouble()
        let start = ContinuousClock.now
        #expect(trouble.succeeded(at: start) == nil)
        #expect(trouble.failed(at: start) == "it failed")
        for step in 1...100 { #expect(trouble.failed(at: start + .milliseconds(50 * step)) == nil) }
        #expect(trouble.failed(at: start + .seconds(10)) == "102 failures over 10.0 s")
        #expect(trouble.failed(at: start + .seconds(12)) == nil)
        #expect(
            trouble.succeeded(at: start + .milliseconds(12_500))
                == "the log's journal went into LMDB again, after 103 failed checkpoints over 12.5 s")
        #expect(trouble.succeeded(at: start + .seconds(13)) == nil)
        #expect(trouble.failed(at: start + .seconds(14)) == "it failed")
    }
}
