import CLMDB
// bench/store: the fleet log and views, measured beside raw LMDB doing the same synced work.
//
//   swift build -c release --static-swift-stdlib --product dwcp-bench-store --product dwcp
//   .build/release/dwcp-bench-store [--vms 100000] [--rounds 5]
//
// 1. Log append, fsync on, at batch sizes 1, 64, 1024: DWCP's LogStore (frame + CRC, writer thread,
//    group commit) against a raw LMDB loop writing the same bytes in the same synced transactions.
//    Rounds alternate between the two; medians are reported.
// 2. Group commit: 64 concurrent single-entry proposers through LogStore.appendNext.
// 3. View apply: host.added + vm.created + vm.placed records applied to SQLite, records/s.
// 4. SQL over the views holding N VMs: point lookup and an aggregate, p50/p99.
// 4b. A views digest (`dwcp cluster verify`) of those views against `PRAGMA integrity_check`.
// 5. History compaction: those views' history (intents, VM events, placements) compacted as the
//    leader does it, one `history.compacted` record per 10,000 rows of each table; all of them
//    against step 3, which wrote that history.
// 5b. A views snapshot of those compacted views: DWCP's copy (VACUUM INTO, the live rows only)
//    against SQLite's backup API copying every page, free ones included; bytes and time.
// 6. Node RSS: `dwcp serve` on that data directory (it rebuilds its views from the log at start),
//    holding N VMs, after answering an aggregate over HTTP.
import ChildProcess
import Foundation
import GRDB
import Node
import Query
import Store

// MARK: Arguments

var vmCount = 100_000
var rounds = 5
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--vms": vmCount = Int(arguments.next() ?? "") ?? vmCount
    case "--rounds": rounds = Int(arguments.next() ?? "") ?? rounds
    default:
        FileHandle.standardError.write(Data("usage: dwcp-bench-store [--vms N] [--rounds R]\n".utf8))
        exit(64)
    }
}

let scratch = NSTemporaryDirectory() + "dwcp-bench-store-\(getpid())"
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: scratch) }

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    return s[min(s.count - 1, Int((p / 100) * Double(s.count)))]
}

func format(_ x: Double) -> String { String(format: x >= 100 ? "%.0f" : "%.2f", x) }

let sampleRecord = Record(
    at: 1_795_000_000_000, requestID: "0f7c1c8e-2a7b-4b53-9d0c-6ed0a1e2b3c4",
    .vmCreated(
        VMCreated(
            name: "web-00001", region: "eu-west", cpus: 2, memoryBytes: 2 << 30, image: "builtin:hello",
            labels: ["app": "web"]))
).encoded()

// MARK: 1. Append: DWCP vs raw LMDB

/// The anchor: a plain LMDB loop, one synced write transaction per batch of `batch` puts.
final class RawLMDB {
    var env: OpaquePointer?
    var dbi: MDB_dbi = 0
    var next: UInt64 = 1

    init(path: String) {
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        mdb_env_create(&env)
        mdb_env_set_maxdbs(env, 4)
        mdb_env_set_mapsize(env, 1 << 32)
        precondition(mdb_env_open(env, path, UInt32(MDB_NOTLS), 0o644) == 0)
        var txn: OpaquePointer?
        mdb_txn_begin(env, nil, 0, &txn)
        mdb_dbi_open(txn, "entries", UInt32(MDB_CREATE), &dbi)
        mdb_txn_commit(txn)
    }

    deinit { mdb_env_close(env) }

    func appendBatch(_ value: [UInt8], count: Int) {
        var txn: OpaquePointer?
        precondition(mdb_txn_begin(env, nil, 0, &txn) == 0)
        var bytes = value
        bytes.withUnsafeMutableBytes { v in
            for _ in 0..<count {
                var key = next.bigEndian
                withUnsafeMutableBytes(of: &key) { k in
                    var mk = MDB_val(mv_size: 8, mv_data: k.baseAddress)
                    var mv = MDB_val(mv_size: v.count, mv_data: v.baseAddress)
                    precondition(mdb_put(txn, dbi, &mk, &mv, UInt32(MDB_APPEND)) == 0)
                }
                next += 1
            }
        }
        precondition(mdb_txn_commit(txn) == 0)
    }
}

print("dwcp-bench-store: \(ProcessInfo.processInfo.activeProcessorCount) CPUs, \(rounds) rounds, \(vmCount) VMs")
print("")
print("1. log append, fsync on (entries/s, median of \(rounds) alternating rounds)")
print("| batch | raw LMDB | DWCP LogStore | ratio |")
print("|---:|---:|---:|---:|")
let frameSize = LogEntry(index: 1, term: 1, payload: sampleRecord).payload.count + 18
var appendRatios: [Int: Double] = [:]
for batch in [1, 64, 1024] {
    let transactions = batch == 1 ? 200 : (batch == 64 ? 60 : 20)
    var rawRates: [Double] = []
    var dwcpRates: [Double] = []
    for round in 0..<rounds {
        let raw = RawLMDB(path: "\(scratch)/raw-\(batch)-\(round)")
        let value = [UInt8](repeating: 0x5a, count: frameSize)
        let rawStart = ContinuousClock.now
        for _ in 0..<transactions { raw.appendBatch(value, count: batch) }
        rawRates.append(Double(transactions * batch) / seconds(ContinuousClock.now - rawStart))

        let log = try LogStore(path: "\(scratch)/dwcp-\(batch)-\(round)", initialMapSize: 1 << 32)
        // The caller's entries exist before the store is asked to append them (as the raw loop's bytes do).
        let batches = (0..<transactions).map { t in
            (0..<batch).map { LogEntry(index: UInt64(t * batch + $0 + 1), term: 1, payload: sampleRecord) }
        }
        let start = ContinuousClock.now
        for entries in batches { try await log.append(entries) }
        dwcpRates.append(Double(transactions * batch) / seconds(ContinuousClock.now - start))
        log.close()
    }
    let ratio = median(dwcpRates) / median(rawRates)
    appendRatios[batch] = ratio
    print(
        "| \(batch) | \(format(median(rawRates))) | \(format(median(dwcpRates))) | \(String(format: "%.2f", ratio)) |")
}

// MARK: 2. Group commit with concurrent proposers

do {
    var rates: [Double] = []
    for round in 0..<rounds {
        let log = try LogStore(path: "\(scratch)/group-\(round)", initialMapSize: 1 << 30)
        let proposers = 64
        let perProposer = 40
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<proposers {
                group.addTask {
                    for _ in 0..<perProposer { _ = try await log.appendNext(term: 1, payloads: [sampleRecord]) }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = seconds(ContinuousClock.now - start)
        rates.append(Double(proposers * perProposer) / elapsed)
        log.close()
    }
    print("")
    print(
        "2. group commit: 64 concurrent proposers of one entry each, fsync on: \(format(median(rates))) entries/s (median)"
    )
}

// MARK: 3. View apply

let hostCount = max(1, vmCount / 100)
var records: [[UInt8]] = []
records.reserveCapacity(hostCount + 2 * vmCount)
for h in 0..<hostCount {
    records.append(
        Record(at: 1, .hostAdded(HostAdded(name: "host-\(h)", region: "eu", cpus: 256, memoryBytes: 1 << 40))).encoded()
    )
}
for v in 0..<vmCount {
    let name = "vm-\(v)"
    records.append(
        Record(
            at: 2, requestID: "req-\(v)",
            .vmCreated(
                VMCreated(
                    name: name, region: "eu", cpus: 1 + v % 4, memoryBytes: Int64(256 + (v % 8) * 256) << 20,
                    image: "builtin:hello", labels: ["app": "app-\(v % 50)"]))
        ).encoded())
    records.append(
        Record(
            at: 3, .vmPlaced(VMPlaced(vm: name, host: "host-\(v % hostCount)", explanation: #"{"policy":"best-fit"}"#))
        ).encoded())
}
let dataDirectory = "\(scratch)/node"
let fleetLog = try LogStore(path: dataDirectory + "/log", initialMapSize: 1 << 30)
var index: UInt64 = 1
for chunk in stride(from: 0, to: records.count, by: 4096) {
    let slice = records[chunk..<min(chunk + 4096, records.count)]
    try await fleetLog.append(
        slice.enumerated().map { LogEntry(index: index + UInt64($0.offset), term: 1, payload: $0.element) })
    index += UInt64(slice.count)
}
let views = try ViewStore(path: dataDirectory + "/views.sqlite")
let applyStart = ContinuousClock.now
var appliedThrough: UInt64 = 0
while appliedThrough < fleetLog.lastIndex {
    let batch = try fleetLog.entries(in: (appliedThrough + 1)...fleetLog.lastIndex, maxCount: 4096)
    appliedThrough = try views.apply(batch)
}
let applyRate = Double(records.count) / seconds(ContinuousClock.now - applyStart)
print("")
print(
    "3. view apply: \(records.count) records (\(hostCount) host.added, \(vmCount) vm.created, \(vmCount) vm.placed): \(format(applyRate)) records/s"
)
fleetLog.close()

// MARK: 4. SQL over the views

let engine = try QueryEngine(path: dataDirectory + "/views.sqlite")
var rng = SystemRandomNumberGenerator()
var point: [Double] = []
for _ in 0..<5000 {
    let name = "vm-\(Int.random(in: 0..<vmCount, using: &rng))"
    let start = ContinuousClock.now
    let result = try engine.runSync("SELECT * FROM vms WHERE name = '\(name)'")
    point.append(seconds(ContinuousClock.now - start) * 1000)
    precondition(result.rows.count == 1)
}
var aggregate: [Double] = []
for _ in 0..<30 {
    let start = ContinuousClock.now
    let result = try engine.runSync(
        "SELECT host, count(*) AS vms, sum(cpus) AS cpus, sum(memory_bytes) AS memory_bytes FROM vms GROUP BY host ORDER BY vms DESC LIMIT 10"
    )
    aggregate.append(seconds(ContinuousClock.now - start) * 1000)
    precondition(!result.rows.isEmpty)
}
print("")
print("4. SQL over \(vmCount) VMs (ms)")
print("| query | p50 | p99 |")
print("|---|---:|---:|")
print(
    "| point lookup by name (5000 runs) | \(String(format: "%.3f", percentile(point, 50))) | \(String(format: "%.3f", percentile(point, 99))) |"
)
print(
    "| GROUP BY host over all VMs (30 runs) | \(String(format: "%.1f", percentile(aggregate, 50))) | \(String(format: "%.1f", percentile(aggregate, 99))) |"
)

// MARK: 4b. A views digest

// What each member does for `dwcp cluster verify`: hash every table of its views, row by row, from
// a snapshot. The anchor: SQLite's `PRAGMA integrity_check`, which reads the same file whole as a
// node starts. Rounds alternate.
var digestTimes: [Double] = []
var checkTimes: [Double] = []
var digestRows = 0
for _ in 0..<rounds {
    var start = ContinuousClock.now
    let digest = try await views.digest(of: try views.openSnapshot())
    digestTimes.append(seconds(ContinuousClock.now - start) * 1000)
    digestRows = digest.tables.reduce(0) { $0 + $1.rows }
    start = ContinuousClock.now
    try await views.checkIntegrity()
    checkTimes.append(seconds(ContinuousClock.now - start) * 1000)
}
print("")
print(
    "4b. a views digest (dwcp cluster verify) of those views, \(digestRows) rows, against PRAGMA integrity_check (ms, median of \(rounds) alternating rounds)"
)
print("| integrity_check | digest | ratio |")
print("|---:|---:|---:|")
print(
    "| \(format(median(checkTimes))) | \(format(median(digestTimes))) | \(String(format: "%.2f", median(digestTimes) / median(checkTimes)))× |"
)

// MARK: 5. History compaction

// Every record above is from `at` 1–3 ms: all of it is older than the cutoff. The VMs all still
// exist, so their placements stay; each record looks at the VMs placed or changed in its range.
var compactionTimes: [Double] = []
var compactionIndex = appliedThrough + 1
while let boundary = try views.read({ db in
    try ViewStore.historyCompactionBoundary(olderThan: 1_000, limit: ViewStore.historyRowsPerCompaction, db)
}) {
    let record = Record(at: 4, .historyCompacted(HistoryCompacted(beforeIndex: boundary)))
    let start = ContinuousClock.now
    _ = try views.apply([LogEntry(index: compactionIndex, term: 1, payload: record.encoded())])
    compactionTimes.append(seconds(ContinuousClock.now - start) * 1000)
    compactionIndex += 1
}
let leftAfterCompaction = try views.read { db in
    try Int.fetchOne(db, sql: "SELECT (SELECT count(*) FROM intents) + (SELECT count(*) FROM vm_events)") ?? -1
}
precondition(leftAfterCompaction == 0, "history left after compaction: \(leftAfterCompaction)")
// The anchor: step 3, which wrote this history (and the VMs and hosts beside it).
let writingMilliseconds = Double(records.count) / applyRate * 1000
let compactingMilliseconds = compactionTimes.reduce(0, +)
print("")
print(
    "5. history compaction: \(compactionTimes.count) records of at most \(ViewStore.historyRowsPerCompaction) rows a table, each applied in \(String(format: "%.1f", median(compactionTimes))) ms (median; max \(String(format: "%.1f", compactionTimes.max() ?? 0)) ms); all of them \(String(format: "%.0f", compactingMilliseconds)) ms against \(String(format: "%.0f", writingMilliseconds)) ms to apply the \(records.count) records that wrote the history (ratio \(String(format: "%.2f", compactingMilliseconds / writingMilliseconds)))"
)

// MARK: 5b. A views snapshot after the compaction

// What a member that catches up receives: DWCP's snapshot copy (`ViewStore.copy(to:)`, VACUUM
// INTO) against the anchor, a page-for-page copy of the same views with SQLite's backup API
// (what the file weighs, free pages included), both synced; rounds alternate.
func fileBytes(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
}
var snapshotTimes: [Double] = []
var pageCopyTimes: [Double] = []
var snapshotBytes = 0
var pageCopyBytes = 0
for round in 0..<rounds {
    let snapshotPath = "\(scratch)/snapshot-\(round).sqlite"
    let pageCopyPath = "\(scratch)/page-copy-\(round).sqlite"
    for takesSnapshot in round % 2 == 0 ? [true, false] : [false, true] {
        let start = ContinuousClock.now
        if takesSnapshot {
            let copied = try await views.copy(to: snapshotPath)
            precondition(copied == compactionIndex - 1, "the snapshot holds index \(copied)")
            snapshotTimes.append(seconds(ContinuousClock.now - start) * 1000)
        } else {
            try views.read { db in
                let destination = try DatabaseQueue(path: pageCopyPath)
                try destination.writeWithoutTransaction { try db.backup(to: $0) }
                try destination.close()
            }
            try ViewStore.syncFile(pageCopyPath)
            pageCopyTimes.append(seconds(ContinuousClock.now - start) * 1000)
        }
    }
    snapshotBytes = fileBytes(snapshotPath)
    pageCopyBytes = fileBytes(pageCopyPath) + fileBytes(pageCopyPath + "-wal")
    for path in [snapshotPath, pageCopyPath, pageCopyPath + "-wal", pageCopyPath + "-shm"] {
        try? FileManager.default.removeItem(atPath: path)
    }
}
print("")
print("5b. a views snapshot after the compaction (median of \(rounds) alternating rounds)")
print("| copy | MiB | ms |")
print("|---|---:|---:|")
print(
    "| page copy, SQLite backup API (anchor) | \(String(format: "%.1f", Double(pageCopyBytes) / 1_048_576)) | \(String(format: "%.0f", median(pageCopyTimes))) |"
)
print(
    "| DWCP snapshot (VACUUM INTO) | \(String(format: "%.1f", Double(snapshotBytes) / 1_048_576)) | \(String(format: "%.0f", median(snapshotTimes))) |"
)
print(
    "| ratio | \(String(format: "%.2f", Double(snapshotBytes) / Double(pageCopyBytes))) | \(String(format: "%.2f", median(snapshotTimes) / median(pageCopyTimes))) |"
)

// MARK: 6. Node RSS

let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("dwcp")
    .path
if FileManager.default.isExecutableFile(atPath: binary) {
    try? FileManager.default.removeItem(atPath: dataDirectory + "/views.sqlite")
    try? FileManager.default.removeItem(atPath: dataDirectory + "/views.sqlite-wal")
    try? FileManager.default.removeItem(atPath: dataDirectory + "/views.sqlite-shm")
    let out = scratch + "/serve.out"
    FileManager.default.createFile(atPath: out, contents: nil)
    let arguments = [
        "serve", "--data-dir", dataDirectory, "--node-id", "bench", "--region", "eu", "--api", "127.0.0.1:0",
        "--log-level", "warning",
    ]
    let startupBegan = ContinuousClock.now
    let serve = try SpawnedProcess(binary, arguments, stdout: .file(out))
    var port = ""
    while port.isEmpty && serve.isRunning {
        if let text = try? String(contentsOfFile: out, encoding: .utf8),
            let range = text.range(of: #"127\.0\.0\.1:\d+"#, options: .regularExpression)
        {
            port = String(text[range])
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    let startup = seconds(ContinuousClock.now - startupBegan)
    _ = try await runToEnd(
        binary,
        ["sql", "SELECT count(*), sum(memory_bytes) FROM vms GROUP BY region", "--server", port, "--format", "csv"])
    let status = (try? String(contentsOfFile: "/proc/\(serve.processIdentifier)/status", encoding: .utf8)) ?? ""
    let rss =
        status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }.map {
            String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces)
        } ?? "?"
    serve.kill(SIGTERM)
    await serve.waitUntilExit()
    print("")
    print(
        "6. dwcp serve holding \(vmCount) VMs: RSS \(rss) after an aggregate query; start-up with a views rebuild from \(records.count) log entries: \(String(format: "%.1f", startup)) s"
    )
} else {
    print("")
    print("6. skipped: no dwcp binary next to this benchmark (build it with --product dwcp)")
}

print("")
print(
    "targets: append >= 0.80 of raw LMDB at each batch size: "
        + [1, 64, 1024].map { "\($0): \(String(format: "%.2f", appendRatios[$0] ?? 0))" }.joined(separator: ", ")
        + "; apply >= 50000 records/s: \(format(applyRate)); point lookup p50 < 1 ms: \(String(format: "%.3f", percentile(point, 50)))"
)
