import ChildProcess
import Foundation
import Store
import TestSupport
import Testing

@testable import Node

/// A node whose disk fills, on a small tmpfs of its own (root only): it warns before, stops
/// saying why and what to do, loses no acknowledged intent, and starts again once there is room.
@Suite(.serialized) struct DiskFullTests {
    /// Runs `mount` with `arguments`; the status and what it printed.
    static func mount(_ arguments: [String]) async throws -> (Int32, String) {
        let ran = try await runToEnd("/bin/mount", arguments)
        return (ran.status, ran.output + ran.errors)
    }

    /// A 12 MiB tmpfs mounted at `dir`'s `small` (root only): its path, or nil once it printed why
    /// `test` is skipped. The caller unmounts it.
    static func smallDisk(in dir: TemporaryDirectory, for test: String) async throws -> String? {
        guard getuid() == 0 else {
            print("skipped the \(test) test: it mounts a small tmpfs, which needs root (uid \(getuid()))")
            return nil
        }
        let small = dir.file("small")
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        let (mounted, why) = try await Self.mount(["-t", "tmpfs", "-o", "size=12m", "tmpfs", small])
        guard mounted == 0 else {
            print(
                "skipped the \(test) test: cannot mount a tmpfs here (\(why.trimmingCharacters(in: .whitespacesAndNewlines)))"
            )
            return nil
        }
        return small
    }

    @Test("a node whose disk fills warns, stops saying so, loses nothing acknowledged, and starts again with room")
    func diskFills() async throws {
        let dir = TemporaryDirectory()
        guard let small = try await Self.smallDisk(in: dir, for: "full-disk") else { return }
        defer { _ = umount(small) }
        let data = small + "/data"
        let serve = [
            "serve", "--data-dir", data, "--node-id", "n1", "--region", "eu", "--api", "127.0.0.1:0", "--no-host-agent",
        ]

        let first = try DwcpProcess(serve, directory: dir, tag: "first")
        let base = "http://127.0.0.1:\(try await first.waitForPort())"
        // 12 MiB is under the 256 MiB at which a node warns: it says so at its start.
        #expect(
            try await waitUntil(timeout: .seconds(15)) { first.stderr.contains("is running out of space") },
            "\(first.stderr)")
        let metrics = try await send(.GET, base + "/metrics", "").1
        #expect(metrics.contains("dwcp_data_directory_size_bytes 12582912"), "\(metrics.suffix(3000))")

        // Hosts of 64 labels of 250 bytes (about 16 KiB each) until the node stops answering 200.
        let labels = (0..<64).map { #""k\#($0)":"\#(String(repeating: "x", count: 250))""# }.joined(separator: ",")
        var acknowledged: [String] = []
        var refusal = ""
        for i in 0..<2000 {
            let name = "h\(i)"
            let body =
                #"{"name":"\#(name)","cpus":4,"memory_bytes":1073741824,"labels":{\#(labels)},"request_id":"\#(name)"}"#
            do {
                let (status, answer) = try await post(base + "/v1/hosts", body)
                guard status == 200 else {
                    refusal = "\(status) \(answer)"
                    break
                }
                acknowledged.append(name)
            } catch {
                refusal = "\(error)"
                break
            }
        }
        #expect(acknowledged.count >= 10 && !refusal.isEmpty, "\(acknowledged.count) written, then \(refusal)")
        // It stops on its own once its apply fails; if only its log's writes fail, it refuses
        // intents naming the disk (it answered 500 `lmdb` "No space left on device") and serves
        // reads, and is stopped here.
        let stoppedItself = try await waitUntil(timeout: .seconds(20)) { !first.process.isRunning }
        if !stoppedItself {
            #expect(
                refusal.hasPrefix("507 ") && refusal.contains(#""code":"disk_full""#)
                    && refusal.contains("/data is full (") && refusal.contains("nothing was written"), "\(refusal)")
            let (status, rows) = try await post(base + "/v1/sql", #"{"query":"SELECT count(*) FROM hosts"}"#)
            #expect(status == 200 && rows.contains("[[\(acknowledged.count)]]"), "\(rows)")
            first.kill(SIGTERM)
        }
        let exitStatus = try await first.waitForExit()
        let said = first.stderr
        #expect(said.contains("/data is full (") && said.contains("free space there"), "\(said.suffix(3000))")
        if stoppedItself, exitStatus != 0 {
            #expect(said.contains("nothing is lost"), "\(said.suffix(3000))")
            // The API shut down after it, gracefully: no error of its own to mislead.
            #expect(!said.contains("CancellationError"), "\(said.suffix(3000))")
        }

        // Started again on the full disk, it refuses (or stops again), naming the disk.
        let full = try DwcpProcess(serve, directory: dir, tag: "full")
        if try await !waitUntil(timeout: .seconds(20), { !full.process.isRunning }) { full.kill(SIGTERM) }
        #expect(try await full.waitForExit() != 0)
        #expect(
            full.stderr.contains("/data is full (") && full.stderr.contains("free space there and start"),
            "\(full.stderr.suffix(3000))")

        // Room again: it starts, and every acknowledged host is there.
        #expect(try await Self.mount(["-o", "remount,size=256m", small]).0 == 0)
        let second = try DwcpProcess(serve, directory: dir, tag: "second")
        let base2 = "http://127.0.0.1:\(try await second.waitForPort())"
        let (status, rows) = try await post(
            base2 + "/v1/sql", #"{"query":"SELECT name FROM hosts","max_rows":100000}"#)
        #expect(status == 200, "\(rows)")
        let present = Set(rows.matches(of: #/"(h\d+)"/#).map { String($0.output.1) })
        let missing = acknowledged.filter { !present.contains($0) }
        #expect(missing.isEmpty, "acknowledged but missing after the disk filled: \(missing.prefix(10))")
        second.kill(SIGTERM)
        #expect(try await second.waitForExit() == 0)
    }

    @Test(
        "a single node whose log cannot take a batch answers 507 disk_full, serves reads, and writes again with room"
    )
    func singleNodeRefusesWhatItCannotAppend() async throws {
        let dir = TemporaryDirectory()
        guard let small = try await Self.smallDisk(in: dir, for: "full-log") else { return }
        defer { _ = umount(small) }
        let node = try DwcpProcess(
            [
                "serve", "--data-dir", small + "/data", "--node-id", "n1", "--region", "eu", "--api", "127.0.0.1:0",
                "--no-host-agent",
            ], directory: dir, tag: "node")
        let base = "http://127.0.0.1:\(try await node.waitForPort())"
        // Batches of 1,000 VMs (about 300 KiB of records each: past what the log's journal holds
        // free, they go to LMDB at once) until one is refused.
        let label = String(repeating: "x", count: 200)
        var refusal = ""
        var batches = 0
        for i in 0..<50 {
            let body = #"{"name":"b\#(i)","cpus":1,"memory_bytes":1073741824,"count":1000,"labels":{"a":"\#(label)"}}"#
            let (status, answer) = try await post(base + "/v1/vms", body)
            guard status == 200 else {
                refusal = "\(status) \(answer)"
                break
            }
            batches += 1
        }
        // (It answered 500 `lmdb` "mdb_txn_commit: No space left on device".)
        #expect(
            refusal.hasPrefix("507 ") && refusal.contains(#""code":"disk_full""#) && refusal.contains("is full (")
                && refusal.contains("nothing was written"), "\(batches) batches, then \(refusal)")
        #expect(node.process.isRunning)
        let (status, rows) = try await post(base + "/v1/sql", #"{"query":"SELECT count(*) FROM vms"}"#)
        #expect(status == 200 && rows.contains("[[\(batches * 1000)]]"), "\(rows)")
        #expect(node.stderr.contains("a request failed on this node: the filesystem holding"), "\(node.stderr)")
        // Room again: the same node writes.
        #expect(try await Self.mount(["-o", "remount,size=256m", small]).0 == 0)
        let (again, answer) = try await post(
            base + "/v1/vms", #"{"name":"after","cpus":1,"memory_bytes":1073741824}"#)
        #expect(again == 200, "\(answer)")
        node.kill(SIGTERM)
        #expect(try await node.waitForExit() == 0, "\(node.stderr)")
    }
}

extension DiskFullTests {
    @Test("the watch warns when space runs low, again every 10 min while it stays low, and says when there is room")
    func watchWarnsAndRecovers() {
        var state = DiskSpaceWatch.State()
        let low = DiskSpace(availableBytes: 100 << 20, totalBytes: 1 << 40)
        let roomy = DiskSpace(availableBytes: 1 << 39, totalBytes: 1 << 40)
        let start = ContinuousClock.now
        #expect(state.note(roomy, at: start) == nil)
        #expect(state.note(low, at: start) == .warn)
        #expect(state.note(low, at: start + .seconds(590)) == nil)
        #expect(state.note(low, at: start + .seconds(600)) == .warn)
        #expect(state.note(roomy, at: start + .seconds(610)) == .recovered)
        #expect(state.note(roomy, at: start + .seconds(620)) == nil)
        #expect(state.note(low, at: start + .seconds(630)) == .warn)
    }
}
