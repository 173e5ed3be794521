import ChildProcess
import Foundation
import GRDB
import Glibc
import Hypervisor
import Logging
import Node
import Store

// bench/vm-start: how fast DWCP starts a microVM, against QEMU starting the same guest in the same run.
//
//   dwcp-bench-vm-start [--starts N] [--vms-for-overhead K] [--skip-qemu]
//
// Measures, each over N starts (p50/p99):
//   node cold   a VM record applied on a node → the host agent's first KVM_RUN and → the guest's
//               boot-timer write (the agent measures both from the moment the record was applied;
//               read back from the vm_starts view). No pool: every start creates the VM.
//   node pool   the same with a pre-warmed pool of VMs of the VM's shape.
//   vmm cold    MicroVM creation + boot → boot timer, in-process, no node (the VMM's share).
//   vmm pool    a pre-warmed VM taken + booted → boot timer.
//   restore     a snapshot of a 256 MiB counter guest → the restored vCPU's first KVM_RUN, and → its
//               first serial output (the next heartbeat); and of a 256 MiB memtouch guest with
//               64 MiB dirtied → first KVM_RUN (a restore maps memory copy-on-write: its cost does
//               not grow with what the guest dirtied).
//   qemu        `qemu-system-x86_64 -M microvm -enable-kvm` spawned with the same hello ELF
//               (booted through its PVH entry) → the guest's line read from QEMU's stdout. QEMU
//               runs one process per VM, so its number includes starting that process.
// And the VMM's own memory per running VM: process RSS growth over K running counter VMs, minus
// the guest memory those VMs touched, divided by K.

struct Options {
    var starts = 50
    var overheadVMs = 20
    var skipQEMU = false

    init(_ arguments: [String]) {
        var i = 1
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("missing value for \(arguments[i - 1])") }
            return arguments[i]
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--starts": starts = Int(value()) ?? { fail("invalid --starts") }()
            case "--vms-for-overhead": overheadVMs = Int(value()) ?? { fail("invalid --vms-for-overhead") }()
            case "--skip-qemu": skipQEMU = true
            case "-h", "--help":
                print("usage: dwcp-bench-vm-start [--starts N] [--vms-for-overhead K] [--skip-qemu]")
                exit(0)
            default: fail("unknown argument \(arguments[i])")
            }
            i += 1
        }
        guard starts >= 1, overheadVMs >= 1 else { fail("--starts and --vms-for-overhead must be 1 or more") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("dwcp-bench-vm-start: \(message)\n".utf8))
    exit(1)
}

func micros(_ d: Duration) -> Double {
    let (s, a) = d.components
    return Double(s) * 1e6 + Double(a) / 1e12
}

/// p50 and p99 (nearest rank) of a sample, in microseconds.
struct Summary {
    let p50: Double
    let p99: Double
    let count: Int

    init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        func rank(_ q: Double) -> Double {
            sorted.isEmpty
                ? .nan : sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
        }
        p50 = rank(0.5)
        p99 = rank(0.99)
    }
}

func format(_ us: Double) -> String {
    if us.isNaN { return "-" }
    return us >= 10_000 ? String(format: "%.1f ms", us / 1000) : String(format: "%.0f µs", us)
}

func row(_ name: String, _ summary: Summary, note: String = "") {
    print(
        "| \(name.padding(toLength: 44, withPad: " ", startingAt: 0)) | \(format(summary.p50).padding(toLength: 9, withPad: " ", startingAt: 0)) | \(format(summary.p99).padding(toLength: 9, withPad: " ", startingAt: 0)) | \(summary.count) | \(note)"
    )
    fflush(nil)
}

let options = Options(CommandLine.arguments)
let kvm: KVMSystem
switch KVMSystem.shared {
case .success(let system): kvm = system
case .failure(let error): fail("needs a usable /dev/kvm: \(error.message)")
}
let hello = try GuestImage.named("builtin:hello")
let shape = MicroVMShape(memoryBytes: 256 << 20, vcpus: 1)
let work = NSTemporaryDirectory() + "dwcp-bench-vm-start-\(getpid())"
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: work) }

// MARK: Through a node: record applied → first entry / boot timer, as the host agent measures it.

func nodeStarts(pool: Int) async throws -> (entry: [Double], boot: [Double], paths: [String: Int]) {
    let directory = work + "/node-pool-\(pool)"
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let node = try Node(
        configuration: NodeConfiguration(
            dataDirectory: directory, nodeID: "bench", region: "bench", apiPort: 0,
            hostAgent: HostAgentConfiguration(hostName: "bench-host", poolSize: pool, poolMemoryBytes: 256 << 20)),
        logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await node.run() }
        defer { group.cancelAll() }
        // Wait for the agent to register the host.
        while try await node.query.run("SELECT count(*) FROM hosts").rows.first?.first?.intValue != 1 {
            try await Task.sleep(for: .milliseconds(10))
        }
        for i in 0..<options.starts {
            // Let the pool refill between starts (a fleet's starts are rarely back to back).
            try await Task.sleep(for: .milliseconds(pool > 0 ? 40 : 5))
            let name = "vm-\(i)"
            _ = try await node.submit(
                .createVM(
                    VMCreated(
                        name: name, region: "bench", cpus: 1, memoryBytes: 256 << 20, image: "builtin:hello",
                        labels: [:], desiredState: .running)))
            while try await node.query.run("SELECT count(*) FROM vm_starts WHERE vm = '\(name)'").rows.first?.first?
                .intValue != 1
            {
                try await Task.sleep(for: .milliseconds(2))
            }
            _ = try await node.submit(.deleteVM(name: name))
        }
        let result = try await node.query.run("SELECT path, first_entry_us, boot_us FROM vm_starts ORDER BY log_index")
        var entry: [Double] = []
        var boot: [Double] = []
        var paths: [String: Int] = [:]
        for r in result.rows {
            paths[r[0].stringValue ?? "?", default: 0] += 1
            entry.append(Double(r[1].intValue ?? 0))
            boot.append(Double(r[2].intValue ?? 0))
        }
        return (entry, boot, paths)
    }
}

// MARK: The VMM alone.

func vmmCold() throws -> (entry: [Double], boot: [Double]) {
    var entry: [Double] = []
    var boot: [Double] = []
    for _ in 0..<options.starts {
        let start = ContinuousClock.now
        let vm = try MicroVM(kvm: kvm, shape: shape)
        try vm.boot(hello, console: nil)
        while vm.timing.bootTimer == nil { usleep(20) }
        let t = vm.timing
        entry.append(micros(t.firstEntry! - start))
        boot.append(micros(t.bootTimer! - start))
        vm.stop()
    }
    return (entry, boot)
}

func vmmPool() throws -> [Double] {
    let pool = MicroVMPool(kvm: kvm, shape: shape, size: 1)
    var boot: [Double] = []
    for _ in 0..<options.starts {
        try pool.refill()
        usleep(2000)  // the pooled VM's thread is parked, as it would be in a real pool
        let start = ContinuousClock.now
        guard let vm = pool.take() else { fail("the pool is empty") }
        try vm.boot(hello, console: nil)
        while vm.timing.bootTimer == nil { usleep(5) }
        boot.append(micros(vm.timing.bootTimer! - start))
        vm.stop()
    }
    return boot
}

/// Snapshots a 256 MiB guest of `image`, then restores it `--starts` times: → the restored vCPU's
/// first KVM_RUN, and (when `untilOutput`) → its first serial output, which shows it runs on.
func restores(image: String, commandLine: String, untilOutput: Bool) async throws -> (
    entry: [Double], output: [Double], residentAtSnapshot: Int
) {
    let snapshot = work + "/snapshot-" + image.replacingOccurrences(of: ":", with: "-")
    let vm = try MicroVM(kvm: kvm, shape: shape)
    try vm.boot(
        try GuestImage.named(image), commandLine: commandLine, console: try SerialConsole(path: snapshot + ".log"))
    try await Task.sleep(for: .milliseconds(500))
    await vm.pause()
    let resident = vm.residentGuestBytes
    try vm.snapshot(to: snapshot)
    vm.stop()
    var entry: [Double] = []
    var output: [Double] = []
    for _ in 0..<options.starts {
        let start = ContinuousClock.now
        let restored = try MicroVM.restore(kvm: kvm, from: snapshot)
        try restored.resumeRestored(console: nil)
        while restored.timing.firstEntry == nil || (untilOutput && restored.timing.firstOutput == nil) { usleep(10) }
        let t = restored.timing
        entry.append(micros(t.firstEntry! - start))
        if untilOutput { output.append(micros(t.firstOutput! - start)) }
        restored.stop()
    }
    return (entry, output, resident)
}

func qemuStarts() async throws -> [Double]? {
    let candidates = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"]
    guard let qemu = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
    guard let elf = GuestImage.builtinELF("builtin:hello") else { fail("no hello ELF") }
    let path = work + "/hello.elf"
    try Data(elf).write(to: URL(fileURLWithPath: path))
    var times: [Double] = []
    for _ in 0..<options.starts {
        let start = ContinuousClock.now
        let child = try CleanProcess(
            path: qemu,
            arguments: [
                "-M", "microvm,x-option-roms=off,rtc=off", "-enable-kvm", "-m", "256M", "-no-reboot", "-nodefaults",
                "-display", "none", "-serial", "stdio", "-kernel", path,
            ])
        let seen = child.read(until: "hello from builtin:hello", timeoutMilliseconds: 10_000)
        let elapsed = ContinuousClock.now - start
        await child.kill()
        guard seen.contains("hello from builtin:hello") else {
            fail("QEMU did not print the guest's line within 10 s: \(seen)")
        }
        times.append(micros(elapsed))
    }
    return times
}

/// QEMU with its stdout on a pipe this bench reads. (``SpawnedProcess`` starts it with a clean
/// signal mask and default handlers: Foundation's `Process` passed on the spawning thread's blocked
/// signals, and a QEMU that inherits them never boots.)
struct CleanProcess {
    let process: SpawnedProcess
    let output: Int32

    init(path: String, arguments: [String]) throws {
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else { fail("pipe: errno \(errno)") }
        defer { close(pipe[1]) }
        process = try SpawnedProcess(path, arguments, stdout: .descriptor(pipe[1]))
        output = pipe[0]
    }

    /// Reads stdout until `marker` appears, the stream ends or the time is up.
    func read(until marker: String, timeoutMilliseconds: Int32) -> String {
        var seen = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMilliseconds))
        while !String(decoding: seen, as: UTF8.self).contains(marker) {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { break }
            var descriptor = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(
                &descriptor, 1,
                Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1))
            if ready <= 0 { continue }
            let count = Glibc.read(output, &buffer, buffer.count)
            if count <= 0 { break }
            seen.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: seen, as: UTF8.self)
    }

    func kill() async {
        process.kill(SIGKILL)
        await process.waitUntilExit()
        close(output)
    }
}

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func overheadPerVM() async throws -> (perVM: Double, guestTouched: Int) {
    let counter = try GuestImage.named("builtin:counter")
    // Warm up what every VM shares (the image cache, thread machinery), then measure K more.
    let warm = try MicroVM(kvm: kvm, shape: shape)
    try warm.boot(counter, commandLine: "interval_ms=50", console: nil)
    try await Task.sleep(for: .milliseconds(100))
    let before = residentBytes()
    var vms: [MicroVM] = []
    for i in 0..<options.overheadVMs {
        let vm = try MicroVM(kvm: kvm, shape: shape)
        try vm.boot(
            counter, commandLine: "interval_ms=50", console: try SerialConsole(path: work + "/overhead-\(i).log"))
        vms.append(vm)
    }
    try await Task.sleep(for: .milliseconds(500))
    let after = residentBytes()
    let guest = vms.reduce(0) { $0 + $1.residentGuestBytes }
    for vm in vms + [warm] { vm.stop() }
    return (Double(after - before - guest) / Double(options.overheadVMs), guest / options.overheadVMs)
}

print("dwcp-bench-vm-start: \(options.starts) starts each, guest builtin:hello, 1 vCPU, 256 MiB")
print("")
print("| measurement                                  | p50       | p99       | n  | note")
print("|----------------------------------------------|-----------|-----------|----|-----")
let cold = try await nodeStarts(pool: 0)
row("node cold: record applied → first KVM_RUN", Summary(cold.entry), note: "paths \(cold.paths)")
row("node cold: record applied → boot timer", Summary(cold.boot))
let pooled = try await nodeStarts(pool: 2)
row("node pool: record applied → first KVM_RUN", Summary(pooled.entry), note: "paths \(pooled.paths)")
row("node pool: record applied → boot timer", Summary(pooled.boot))
let vmm = try vmmCold()
row("vmm cold: create + boot → first KVM_RUN", Summary(vmm.entry))
row("vmm cold: create + boot → boot timer", Summary(vmm.boot))
row("vmm pool: take + boot → boot timer", Summary(try vmmPool()))
let counter = try await restores(image: "builtin:counter", commandLine: "interval_ms=10", untilOutput: true)
row("restore 256 MiB counter → first KVM_RUN", Summary(counter.entry))
row("restore 256 MiB counter → first serial output", Summary(counter.output), note: "the next heartbeat")
let dirty = try await restores(
    image: "builtin:memtouch", commandLine: "working_set=64M rate=200000", untilOutput: false)
row(
    "restore 256 MiB memtouch → first KVM_RUN", Summary(dirty.entry),
    note: "\(dirty.residentAtSnapshot >> 20) MiB dirtied before the snapshot")
var qemu: Summary?
if !options.skipQEMU {
    if let times = try await qemuStarts() {
        qemu = Summary(times)
        row("qemu microvm: spawn → guest line on stdout", qemu!)
    } else {
        print("| qemu: not installed (apt-get install qemu-system-x86) |")
    }
}
let overhead = try await overheadPerVM()
print("")
print(
    String(
        format: "VMM memory per running VM: %.2f MiB beyond guest memory (guest touched %.2f MiB each, %d VMs)",
        overhead.perVM / 1_048_576, Double(overhead.guestTouched) / 1_048_576, options.overheadVMs))
if let qemu {
    let nodeCold = Summary(cold.boot).p50
    let nodePool = Summary(pooled.boot).p50
    print(
        String(
            format: "QEMU p50 / DWCP p50 to the guest being up: %.0f× (node cold), %.0f× (node pool), %.0f× (vmm cold)",
            qemu.p50 / nodeCold, qemu.p50 / nodePool, qemu.p50 / Summary(vmm.boot).p50))
}
