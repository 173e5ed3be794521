import Foundation
import GRDB
import NIOCore
import NIOPosix
import Replication
import Synchronization
import TestSupport
import Testing

@testable import Node
@testable import Store

/// A snapshot on its way to a member: chunks taken in order, and only an intact views file at the
/// index it was sent as is kept for Raft to install.
@Suite struct SnapshotTransferTests {
    /// A member's snapshots directory, and the bytes of a snapshot of a few records' views, taken
    /// by another member at index 11.
    static func setUp(_ dir: TemporaryDirectory) async throws -> (ViewSnapshots, [UInt8]) {
        let sender = try ViewStore(path: dir.file("sender.sqlite"))
        var records = [
            Record(
                at: 1, requestID: "h", .hostAdded(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 8 << 30)))
        ]
        for i in 1...10 {
            records.append(
                Record(
                    at: 1 + Int64(i), requestID: "r\(i)",
                    .hostLabelsSet(HostLabelsSet(name: "h1", labels: ["n": "\(i)"]))))
        }
        let entries = logEntries(records)
        _ = try await sender.apply(entries)
        let copied = try await sender.copy(to: dir.file("sent.sqlite"))
        #expect(copied == 11)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("sent.sqlite"))))
        let receiver = try ViewSnapshots(
            directory: dir.file("snapshots"), views: try ViewStore(path: dir.file("views.sqlite")),
            applied: IndexWatermark(), logger: .init(label: "test"))
        return (receiver, bytes)
    }

    /// `bytes` as 4 KiB chunks of snapshot `index`, with the checksum of `checksummed` (the bytes
    /// themselves unless told otherwise).
    static func chunks(_ bytes: [UInt8], index: UInt64 = 11, checksummed: [UInt8]? = nil) -> [SnapshotChunk] {
        let checksum = CRC32C.checksum(checksummed ?? bytes)
        return stride(from: 0, to: bytes.count, by: 4096).map { offset in
            SnapshotChunk(
                from: "n1", to: "n2", index: index, term: 2, offset: UInt64(offset), totalBytes: UInt64(bytes.count),
                checksum: checksum, data: Array(bytes[offset..<min(offset + 4096, bytes.count)]))
        }
    }

    /// Feeds `chunks` in order; what `receive` answered for each.
    static func feed(_ chunks: [SnapshotChunk], to snapshots: ViewSnapshots) -> [Bool] {
        chunks.map { snapshots.receive($0) }
    }

    @Test("an intact snapshot is kept when its last chunk arrives, and only then")
    func intactSnapshotIsKept() async throws {
        let dir = TemporaryDirectory()
        let (snapshots, bytes) = try await Self.setUp(dir)
        let chunks = Self.chunks(bytes)
        try #require(chunks.count >= 3)
        #expect(Self.feed(chunks, to: snapshots) == Array(repeating: false, count: chunks.count - 1) + [true])
        #expect(snapshots.hasReceived(11))
        #expect(try ViewSnapshots.describe(path: snapshots.receivedPath(11)).index == 11)
    }

    @Test("a flipped byte, a gap, or a chunk of another transfer never yields a snapshot; a clean resend does")
    func damagedTransfersAreDropped() async throws {
        let dir = TemporaryDirectory()
        let (snapshots, bytes) = try await Self.setUp(dir)
        var flipped = Self.chunks(bytes)
        flipped[1].data[7] ^= 0x20
        #expect(!Self.feed(flipped, to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(11))

        var gap = Self.chunks(bytes)
        gap.remove(at: 1)
        #expect(!Self.feed(gap, to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(11))

        // A transfer under way is dropped when another starts: its later chunks are not taken.
        let first = Self.chunks(bytes)
        #expect(snapshots.receive(first[0]) == false)
        var other = Self.chunks(bytes, index: 12)[0]
        other.from = "n3"
        #expect(snapshots.receive(other) == false)
        #expect(!Self.feed(Array(first.dropFirst()), to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(11))

        #expect(Self.feed(Self.chunks(bytes), to: snapshots).last == true)
        #expect(snapshots.hasReceived(11))
        // The transfers given up left nothing behind.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots"))
        #expect(left == ["received-11.sqlite"], "\(left)")
    }

    @Test(
        "bytes that arrive as sent but are no views file, or the views of another index, are refused before Raft hears of them"
    )
    func wholeButWrongFilesAreRefused() async throws {
        let dir = TemporaryDirectory()
        let (snapshots, bytes) = try await Self.setUp(dir)
        // Not a database: checksummed right, so only the check of the file itself refuses it.
        var garbage = [UInt8](repeating: 0, count: 3 * 4096)
        for i in garbage.indices { garbage[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        #expect(!Self.feed(Self.chunks(garbage), to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(11))
        // A database damaged inside (a page of the middle zeroed), checksummed as it is.
        var damaged = bytes
        let page = 4096 * (bytes.count / 4096 / 2)
        for i in page..<(page + 4096) { damaged[i] = 0 }
        #expect(!Self.feed(Self.chunks(damaged), to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(11))
        // A views file whose state row holds no log index (written by hand, or damaged past what
        // quick_check sees): refused, not a trap.
        let crafted = dir.file("crafted.sqlite")
        try Data(bytes).write(to: URL(fileURLWithPath: crafted))
        try await DatabaseQueue(path: crafted).write { db in
            try db.execute(sql: "UPDATE dwcp_state SET applied_index = -1")
        }
        let craftedBytes = Array(try Data(contentsOf: URL(fileURLWithPath: crafted)))
        #expect(!Self.feed(Self.chunks(craftedBytes), to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(11))
        // An intact snapshot sent as another index.
        #expect(!Self.feed(Self.chunks(bytes, index: 12), to: snapshots).contains(true))
        #expect(!snapshots.hasReceived(12))
        // What the directory holds after all that: nothing received, nothing half-written kept.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots"))
        #expect(left.isEmpty, "\(left)")
    }

    @Test(
        "a whole views file holding a value the applier never writes (text in an INTEGER column, a negative or future index, a huge size) is refused, naming it"
    )
    func strayValuesAreRefused() async throws {
        let dir = TemporaryDirectory()
        let (snapshots, bytes) = try await Self.setUp(dir)
        let cases = [
            ("UPDATE hosts SET cpus = 'eight'", "table hosts"),
            ("UPDATE hosts SET created_index = -1", "created_index -1"),
            ("UPDATE dwcp_state SET placement_index = 12", "placement_index 12"),
            ("UPDATE hosts SET memory_bytes = \(Int64.max)", "memory_bytes \(Int64.max)"),
            ("UPDATE intents SET request_id = x'00ff' WHERE log_index = 2", "table intents"),
        ]
        for (number, (change, named)) in cases.enumerated() {
            let crafted = dir.file("crafted-\(number).sqlite")
            try Data(bytes).write(to: URL(fileURLWithPath: crafted))
            try await DatabaseQueue(path: crafted).write { db in try db.execute(sql: change) }
            #expect(throws: NodeError.self, "\(change)") { try ViewSnapshots.check(path: crafted, index: 11) }
            do {
                try ViewSnapshots.check(path: crafted, index: 11)
            } catch {
                #expect(
                    "\(error)".contains("holds a value the views never hold") && "\(error)".contains(named), "\(error)")
            }
            let craftedBytes = Array(try Data(contentsOf: URL(fileURLWithPath: crafted)))
            #expect(!Self.feed(Self.chunks(craftedBytes), to: snapshots).contains(true), "\(change)")
            #expect(!snapshots.hasReceived(11))
        }
        // The snapshot as the applier wrote it passes, as does a term as large as any.
        let sent = dir.file("sent.sqlite")
        try ViewSnapshots.check(path: sent, index: 11)
        try await DatabaseQueue(path: sent).write { db in
            try db.execute(sql: "UPDATE dwcp_state SET applied_term = \(Int64.max)")
        }
        try ViewSnapshots.check(path: sent, index: 11)
    }

    @Test("a snapshot larger than the free space is refused at its first chunk, and nothing is written")
    func oversizedSnapshotIsRefused() async throws {
        let dir = TemporaryDirectory()
        let (snapshots, _) = try await Self.setUp(dir)
        let chunk = SnapshotChunk(
            from: "n1", to: "n2", index: 11, term: 2, offset: 0, totalBytes: 1 << 60, checksum: 0, data: [1, 2, 3])
        #expect(snapshots.receive(chunk) == false)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.file("snapshots"))
        #expect(left.isEmpty, "\(left)")
    }

    @Test("a deposed leader's snapshot does not cut off the transfer of a later leader's under way")
    func anEarlierTermsTransferDoesNotCutIn() async throws {
        let dir = TemporaryDirectory()
        let (snapshots, bytes) = try await Self.setUp(dir)
        let later = Self.chunks(bytes).map { chunk in
            var chunk = chunk
            chunk.term = 3
            return chunk
        }
        var earlier = Self.chunks(bytes)[0]
        earlier.from = "n9"
        #expect(Self.feed(Array(later.prefix(2)), to: snapshots) == [false, false])
        #expect(snapshots.receive(earlier) == false)
        #expect(Self.feed(Array(later.dropFirst(2)), to: snapshots).last == true)
        #expect(snapshots.hasReceived(11))
    }

    @Test(
        "a snapshot is sent with at most a few chunks waiting to be written at a time, and whole; a failed write ends the transfer"
    )
    func sendingWaitsForWrites() async throws {
        let dir = TemporaryDirectory()
        let (receiver, bytes) = try await Self.setUp(dir)
        // The sender's copy of snapshot 11.
        let sender = try ViewSnapshots(
            directory: dir.file("sender-snapshots"), views: try ViewStore(path: dir.file("sender-views.sqlite")),
            applied: IndexWatermark(), logger: .init(label: "test"))
        try FileManager.default.copyItem(atPath: dir.file("sent.sqlite"), toPath: sender.path(11))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // Each chunk is "written" 2 ms after it was handed over; how many wait is noted at each hand-over.
        let waiting = Mutex((now: 0, most: 0))
        var received: [Bool] = []
        try await sender.sendChunks(of: 11, term: 2, from: "n1", to: "n2", chunkSize: 4096, inFlight: 3) { chunk in
            received.append(receiver.receive(chunk))
            waiting.withLock {
                $0.now += 1
                $0.most = max($0.most, $0.now)
            }
            let written = loop.makePromise(of: Void.self)
            loop.scheduleTask(in: .milliseconds(2)) {
                waiting.withLock { $0.now -= 1 }
                written.succeed()
            }
            return written.futureResult
        }
        #expect(received.count == (bytes.count + 4095) / 4096 && received.count > 6)
        #expect(received.last == true && receiver.hasReceived(11))
        #expect(waiting.withLock { $0.most } <= 3, "\(waiting.withLock { $0 })")
        #expect(waiting.withLock { $0.now } == 0)
        // A write that fails (the connection closed) ends the transfer with its error.
        struct Closed: Error {}
        var handed = 0
        await #expect(throws: Closed.self) {
            try await sender.sendChunks(of: 11, term: 2, from: "n1", to: "n2", chunkSize: 4096, inFlight: 2) { _ in
                handed += 1
                return loop.makeFailedFuture(Closed())
            }
        }
        #expect(handed == 2)
    }
}
