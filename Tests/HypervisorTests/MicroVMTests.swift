import CKVM
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Hypervisor

/// Whether this machine can run the KVM tests; when not, they are skipped with this reason.
let kvmSkipReason = KVMSystem.unavailableReason.map { "needs a usable /dev/kvm: \($0)" } ?? ""

func kvm() throws -> KVMSystem { try KVMSystem.shared.get() }

/// The heartbeat counts a `counter` console shows, in order.
func heartbeats(_ path: String) -> [Int] { heartbeats(in: SerialConsole.read(path: path)) }

/// The heartbeat counts in console output, whole lines only: a pause or a stop may fall inside a
/// line ("heartbeat 12" of 129).
func heartbeats(in output: Data) -> [Int] {
    String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        .compactMap { line in line.hasPrefix("heartbeat ") ? Int(line.dropFirst("heartbeat ".count)) : nil }
}

@Suite("MicroVM (KVM)", .enabled(if: KVMSystem.unavailableReason == nil, Comment(rawValue: kvmSkipReason)))
struct MicroVMTests {
    @Test("hello prints its line, reports boot, and halts")
    func hello() async throws {
        let dir = TemporaryDirectory()
        let console = try SerialConsole(path: dir.file("console.log"))
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:hello"), console: console)
        let exit = await vm.waitUntilExited()
        #expect(exit == .halted)
        let output = String(decoding: SerialConsole.read(path: console.path), as: UTF8.self)
        #expect(output == "hello from builtin:hello\n")
        let timing = vm.timing
        let started = try #require(timing.started)
        let entered = try #require(timing.firstEntry)
        let booted = try #require(timing.bootTimer)
        #expect(started <= entered && entered <= booted)
    }

    /// A started VM whose guest writes to pages already mapped, for hours between two exits.
    func busyGuest(vcpus: Int) throws -> MicroVM {
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: vcpus))
        try vm.boot(
            GuestImage.named("builtin:memtouch"), commandLine: "working_set=1048576 rate=100000000000000000",
            console: nil)
        return vm
    }

    @Test("a guest busy without exits to the VMM is stopped all the same (its vCPU thread takes the kick signal)")
    func busyGuestStops() async throws {
        let vm = try busyGuest(vcpus: 1)
        try await Task.sleep(for: .milliseconds(300))
        #expect(vm.vcpuThreadsRunning == 1)
        vm.stop()
        #expect(await vm.waitUntilExited() == .stopped)
        _ = try await eventually(.seconds(10)) { vm.vcpuThreadsRunning == 0 }
        #expect(vm.vcpuThreadsRunning == 0, "the vCPU thread went on running the guest after stop()")
    }

    @Test("counter's heartbeat advances until it is stopped; a second vCPU waits parked")
    func counter() async throws {
        let dir = TemporaryDirectory()
        let console = try SerialConsole(path: dir.file("console.log"))
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 32 << 20, vcpus: 2))
        try vm.boot(GuestImage.named("builtin:counter"), commandLine: "interval_ms=20", console: console)
        #expect(try await eventually { heartbeats(console.path).count >= 5 })
        vm.stop()
        #expect(await vm.waitUntilExited() == .stopped)
        let counts = heartbeats(console.path)
        #expect(counts == Array(1...counts.count))
        try await Task.sleep(for: .milliseconds(100))
        #expect(heartbeats(console.path).count == counts.count, "no output after stop")
    }

    @Test("pause does not wait for the end of a long sleep the guest asked for")
    func pauseDuringALongSleep() async throws {
        let dir = TemporaryDirectory()
        let console = try SerialConsole(path: dir.file("console.log"))
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        // A heartbeat, then an hour's sleep.
        try vm.boot(GuestImage.named("builtin:counter"), commandLine: "interval_ms=3600000", console: console)
        #expect(try await eventually { heartbeats(console.path).count >= 1 })
        // Whichever ends first: the pause, or 5 s (then the stop below ends the pause's wait).
        let paused = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await vm.pause()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return false
            }
            let first = await group.next()!
            vm.stop()
            group.cancelAll()
            return first
        }
        #expect(paused, "pause waited for the end of the guest's sleep")
        #expect(await vm.waitUntilExited() == .stopped)
    }

    @Test("pause stops the heartbeat, resume continues it")
    func pauseResume() async throws {
        let dir = TemporaryDirectory()
        let console = try SerialConsole(path: dir.file("console.log"))
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:counter"), commandLine: "interval_ms=10", console: console)
        #expect(try await eventually { heartbeats(console.path).count >= 3 })
        await vm.pause()
        #expect(vm.state == .paused)
        let atPause = heartbeats(console.path).count
        try await Task.sleep(for: .milliseconds(150))
        #expect(heartbeats(console.path).count == atPause)
        vm.resume()
        #expect(try await eventually { heartbeats(console.path).count >= atPause + 3 })
        vm.stop()
        _ = await vm.waitUntilExited()
    }

    @Test("a snapshot restored into a new VM continues the count")
    func snapshotRestore() async throws {
        let dir = TemporaryDirectory()
        let console = try SerialConsole(path: dir.file("console.log"))
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 64 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:counter"), commandLine: "interval_ms=10", console: console)
        #expect(try await eventually { heartbeats(console.path).count >= 5 })
        await vm.pause()
        let last = try #require(heartbeats(console.path).last)
        try vm.snapshot(to: dir.file("snap"))
        vm.stop()
        _ = await vm.waitUntilExited()

        let restoredConsole = try SerialConsole(path: dir.file("restored.log"))
        let restored = try MicroVM.restore(kvm: kvm(), from: dir.file("snap"))
        try restored.resumeRestored(console: restoredConsole)
        #expect(try await eventually { heartbeats(restoredConsole.path).count >= 3 })
        restored.stop()
        _ = await restored.waitUntilExited()
        // The pause may fall inside a heartbeat line: the restored guest then finishes that line.
        // Read as one stream, the two consoles count on without a gap or a repeat.
        let all = heartbeats(
            in: SerialConsole.read(path: console.path) + SerialConsole.read(path: restoredConsole.path))
        let after = Array(all.drop { $0 <= last })
        #expect(after.count >= 3)
        #expect(after.first == last + 1)
        #expect(all == Array(1...all.count), "the count across the snapshot: \(all.suffix(8))")
        // The memory file is sparse: a 64 MiB guest that touched little stores little.
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.file("snap/memory"))
        #expect((attributes[.size] as? Int) == 64 << 20)
    }

    @Test("a stop and release() while a snapshot is written wait for it; afterwards a snapshot is refused")
    func releaseWaitsForSnapshot() async throws {
        let dir = TemporaryDirectory()
        // 256 MiB to scan for zero pages: long enough for the stop and release to fall inside it.
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 256 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:counter"), commandLine: "interval_ms=10", console: nil)
        try await Task.sleep(for: .milliseconds(50))
        await vm.pause()
        let written = Mutex<Result<Void, any Error>?>(nil)
        let snapshotThread = Thread {
            let result = Result { try vm.snapshot(to: dir.file("snap")) }
            written.withLock { $0 = result }
        }
        snapshotThread.start()
        // Usually stopped and released while the snapshot is written; on a loaded machine the
        // snapshot may not have begun yet (releaseWaitsForBorrowers tests the wait without timing).
        _ = try await eventually { vm.borrowersNow == 1 || written.withLock { $0 != nil } }
        vm.stop()
        await vm.release()  // before the fix, the memory went while the snapshot read it: SIGSEGV
        let outcome = try #require(written.withLock { $0 }, "release() returned before the snapshot ended")
        #expect(throws: Never.self) { try outcome.get() }
        #expect(!vm.memory.mapped)
        #expect(vm.residentGuestBytes == 0)
        #expect(throws: HypervisorError.self) { try vm.snapshot(to: dir.file("again")) }
    }

    @Test("release() waits while the memory is borrowed (as a snapshot borrows it), and frees it once given back")
    func releaseWaitsForBorrowers() async throws {
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:counter"), commandLine: "interval_ms=10", console: nil)
        await vm.pause()
        #expect(vm.borrow() == .paused)  // what a snapshot does first
        vm.stop()
        let released = Mutex(false)
        async let release: Void = {
            await vm.release()
            released.withLock { $0 = true }
        }()
        try await Task.sleep(for: .milliseconds(300))
        #expect(!released.withLock { $0 }, "release() returned while the memory was borrowed")
        #expect(vm.memory.mapped)
        vm.giveBack()
        await release
        #expect(!vm.memory.mapped)
        #expect(vm.borrow() == nil, "a borrow after the release")
    }

    @Test("a damaged snapshot is refused with a clear error")
    func damagedSnapshot() async throws {
        let dir = TemporaryDirectory()
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:counter"), console: nil)
        try await Task.sleep(for: .milliseconds(20))
        await vm.pause()
        try vm.snapshot(to: dir.file("snap"))
        vm.stop()
        var state = try Data(contentsOf: URL(fileURLWithPath: dir.file("snap/vmstate")))
        state[40] ^= 0xff
        try state.write(to: URL(fileURLWithPath: dir.file("snap/vmstate")))
        #expect {
            _ = try MicroVM.restore(kvm: kvm(), from: dir.file("snap"))
        } throws: { error in
            (error as? HypervisorError)?.code == .invalidSnapshot
                && "\(error)".contains("checksum")
        }
    }

    @Test("a guest that triple-faults ends crashed with the reason, and the process goes on")
    func crash() async throws {
        let dir = TemporaryDirectory()
        let console = try SerialConsole(path: dir.file("console.log"))
        let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        try vm.boot(GuestImage.named("builtin:crash"), console: console)
        let exit = await vm.waitUntilExited()
        guard case .crashed(let reason) = exit else {
            Issue.record("expected a crash, got \(exit)")
            return
        }
        #expect(reason.contains("triple fault"))
        // Another VM still runs fine.
        let next = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        try next.boot(GuestImage.named("builtin:hello"), console: nil)
        #expect(await next.waitUntilExited() == .halted)
    }

    @Test("a pre-warmed VM from the pool starts the image")
    func pool() async throws {
        let dir = TemporaryDirectory()
        let pool = MicroVMPool(kvm: try kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1), size: 2)
        try pool.refill()
        #expect(pool.count == 2)
        let vm = try #require(pool.take())
        #expect(pool.count == 1)
        let console = try SerialConsole(path: dir.file("console.log"))
        try vm.boot(GuestImage.named("builtin:hello"), console: console)
        #expect(await vm.waitUntilExited() == .halted)
        #expect(String(decoding: SerialConsole.read(path: console.path), as: UTF8.self) == "hello from builtin:hello\n")
        pool.drain()
        #expect(pool.count == 0)
    }

    @Test("a pre-warmed VM stopped while it pre-faults ends, and gives its memory back")
    func stopWhilePrefaulting() async throws {
        // No path stops a VM while it pre-faults today (the pool waits for it first), but a stop
        // must end any VM. Pre-faulting takes milliseconds here; stopped at these moments, the boot
        // vCPU is about to begin or in the middle of it (before the fix, most of these left its
        // thread re-entering KVM_RUN for ever).
        for delay in [0, 1, 3, 10] {
            let vm = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 2), prefault: true)
            try await Task.sleep(for: .milliseconds(delay))
            vm.stop()
            #expect(await vm.waitUntilExited() == .stopped)
            let threadsOut = try await eventually(.seconds(5)) { vm.vcpuThreadsRunning == 0 }
            #expect(threadsOut, "a vCPU thread still runs 5 s after a stop \(delay) ms into the pre-faulting")
            guard threadsOut else { continue }  // release() would wait for it for ever
            vm.waitUntilPrefaulted()
            #expect(throws: HypervisorError.self) { try vm.boot(GuestImage.named("builtin:hello"), console: nil) }
            await vm.release()
            #expect(!vm.memory.mapped)
        }
    }

    @Test("release() gives an ended VM's memory and KVM objects back before it returns, with a busy vCPU just stopped")
    func releaseNow() async throws {
        let vm = try busyGuest(vcpus: 2)
        try await Task.sleep(for: .milliseconds(100))
        vm.stop()
        #expect(await vm.waitUntilExited() == .stopped)
        // The threads may still be on their way out of the guest: release waits for them.
        await vm.release()
        #expect(vm.vcpuThreadsRunning == 0)
        #expect(!vm.memory.mapped, "release() returned with the guest's memory mapped")
        #expect(vm.vcpus.allSatisfy { !$0.held }, "release() returned with a vCPU open")
        // Again: nothing is freed twice (deinit, when the VM goes, frees nothing either).
        await vm.release()
    }

    @Test("an ended VM gives back its memory and KVM VM on the release queue, not where it is let go of")
    func releasedOnTheQueue() async throws {
        var vm: MicroVM? = try MicroVM(kvm: kvm(), shape: MicroVMShape(memoryBytes: 16 << 20, vcpus: 1))
        weak let observed = vm
        let fd = try #require(vm).vmFD
        // A second descriptor of the VM's file tells its descriptor, closed, from one another test
        // opened under the same number meanwhile (it keeps the KVM VM alive until the end).
        let witness = dup(fd)
        defer { close(witness) }
        // Held here past the VM's end: the queue must give them back all the same.
        let memory = try #require(vm).memory
        let cpu = try #require(vm?.vcpus.first)
        vm?.stop()
        _ = await vm?.waitUntilExited()
        func isKVMVM(_ fd: Int32) -> Bool {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == "anon_inode:kvm-vm"
        }
        #expect(isKVMVM(fd))
        // (Nothing below throws before leave().)
        await ExclusiveGate.releaseQueue.enter()
        MicroVM.releaseQueue.suspend()
        vm = nil
        // The last reference goes here or on a vCPU thread as it ends; either way nothing is released yet.
        let deinitialized = try? await eventually { observed == nil }
        let openWhileQueued = isKVMVM(fd)
        let mappedWhileQueued = memory.mapped
        MicroVM.releaseQueue.resume()
        #expect(deinitialized == true)
        #expect(openWhileQueued, "the KVM VM was closed by the thread that let go of it")
        #expect(mappedWhileQueued, "the memory was unmapped by the thread that let go of it")
        MicroVM.releaseQueue.sync {}
        await ExclusiveGate.releaseQueue.leave()
        let stillOpen = isKVMVM(fd) && ckvm_same_file(fd, witness) != 0
        #expect(!stillOpen, "the release queue did not close the KVM VM")
        #expect(!memory.mapped, "the release queue did not unmap the guest's memory")
        #expect(!cpu.held, "the release queue did not close the vCPU")
    }
}

@Suite("Boot layout")
struct BootLayoutTests {
    @Test(
        "every 2 MiB page of a VM is identity-mapped up to its size and the park loop stays whole, past 4 GiB too",
        arguments: [64 << 20, 5 << 30, 64 << 30])
    func pageTables(size: Int) throws {
        let memory = try GuestMemory.anonymous(size: size)
        defer { memory.unmap() }
        BootLayout.writeTables(into: memory)
        func read(_ address: UInt64) -> UInt64 {
            memory.base.loadUnaligned(fromByteOffset: Int(address), as: UInt64.self)
        }
        let pdpt = read(BootLayout.pml4Address) & ~0xfff
        var address: UInt64 = 0
        while address < UInt64(size) {
            let directory = read(pdpt + (address >> 30) * 8)
            #expect(directory & 1 == 1, "GiB \(address >> 30) has no page directory")
            let entry = read((directory & ~0xfff) + ((address >> 21) & 511) * 8)
            guard entry == address | 0x83 else {
                Issue.record("the 2 MiB page at \(address) maps \(entry)")
                return
            }
            address += 2 << 20
        }
        #expect(memory.base.load(fromByteOffset: Int(BootLayout.parkAddress), as: UInt32.self) & 0xff_ffff == 0xfd_ebf4)
    }

    @Test("a command line that fits is written whole with its NUL; one byte more is refused, not cut")
    func commandLineFitsOrIsRefused() throws {
        let memory = try GuestMemory.anonymous(size: 64 << 20)
        defer { memory.unmap() }
        let image = try GuestImage.named("builtin:hello")
        let longest = String(repeating: "k", count: MicroVM.maxCommandLineBytes - 2) + "=v"
        try BootLayout.load(image, commandLine: longest, into: memory)
        let at = Int(BootLayout.parametersAddress) + 24
        let written = (0...MicroVM.maxCommandLineBytes).map {
            memory.base.load(fromByteOffset: at + $0, as: UInt8.self)
        }
        #expect(written == Array(longest.utf8) + [0])
        #expect {
            try BootLayout.load(image, commandLine: longest + "w", into: memory)
        } throws: { error in
            (error as? HypervisorError)?.code == .invalidRequest
                && "\(error)".contains("the guest's command line is 256 bytes; at most 255 fit")
        }
    }
}

@Suite("Guest images")
struct GuestImageTests {
    @Test("the built-in images are built from guests/ and valid")
    func builtins() throws {
        #expect(
            GuestImage.builtinReferences == ["builtin:counter", "builtin:crash", "builtin:hello", "builtin:memtouch"])
        let hello = try GuestImage.named("builtin:hello")
        #expect(hello.entry >= 0x10_0000)
        #expect(hello.minimumMemoryBytes >= Int64(hello.end))
    }

    @Test("an unknown image or a file that is not a guest image is refused clearly")
    func invalid() throws {
        #expect {
            _ = try GuestImage.named("builtin:nope")
        } throws: { error in
            (error as? HypervisorError)?.code == .invalidImage && "\(error)".contains("available images are")
        }
        #expect(throws: HypervisorError.self) { try GuestImage(reference: "x", elf: Array("#!/bin/sh\n".utf8)) }
        // A valid image with its entry point moved outside every segment.
        var elf = try validELF()
        elf[24] = 0x42
        elf[25] = 0x00
        elf[26] = 0x00
        elf[27] = 0x00
        #expect {
            _ = try GuestImage(reference: "x", elf: elf)
        } throws: { error in "\(error)".contains("entry point") }
        var wrongMachine = try validELF()
        wrongMachine[18] = 0xb7  // aarch64
        #expect {
            _ = try GuestImage(reference: "x", elf: wrongMachine)
        } throws: { error in "\(error)".contains("x86-64") }
        // Program headers said to start at the last byte addressable: refused, not an overflow.
        var farHeaders = try validELF()
        for i in 32..<40 { farHeaders[i] = 0xff }
        #expect {
            _ = try GuestImage(reference: "x", elf: farHeaders)
        } throws: { error in "\(error)".contains("program headers out of bounds") }
    }

    /// A minimal valid image: one executable segment at 1 MiB holding `hlt`.
    func validELF() throws -> [UInt8] {
        var elf = [UInt8](repeating: 0, count: 0x1001)
        func put(_ value: UInt64, _ at: Int, _ size: Int) {
            for i in 0..<size { elf[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        elf[0...3] = [0x7f, 0x45, 0x4c, 0x46]
        elf[4] = 2
        elf[5] = 1
        put(2, 16, 2)
        put(62, 18, 2)
        put(0x10_0000, 24, 8)
        put(64, 32, 8)
        put(56, 54, 2)
        put(1, 56, 2)
        put(1, 64, 4)  // PT_LOAD
        put(5, 68, 4)  // R+X
        put(0x1000, 72, 8)
        put(0x10_0000, 88, 8)
        put(1, 96, 8)
        put(1, 104, 8)
        elf[0x1000] = 0xf4
        let image = try GuestImage(reference: "x", elf: elf)
        #expect(image.entry == 0x10_0000)
        return elf
    }
}
