import CKVM
import Foundation

/// How a VM ended.
public enum MicroVMExit: Sendable, Equatable, CustomStringConvertible {
    /// The guest halted its boot vCPU (its program finished).
    case halted
    /// The VMM stopped it (a stop request, a teardown).
    case stopped
    /// The guest or KVM failed: a triple fault, a failed entry, an internal error. The reason says which.
    case crashed(String)

    public var description: String {
        switch self {
        case .halted: "the guest halted"
        case .stopped: "stopped"
        case .crashed(let reason): "crashed: \(reason)"
        }
    }
}

/// What a running VM reports as it happens.
public enum MicroVMEvent: Sendable {
    /// The guest wrote the boot-timer port: it is up.
    case booted(ContinuousClock.Instant)
    case exited(MicroVMExit)
}

/// The size of a VM: what a pre-warmed VM must match to be used for a start.
public struct MicroVMShape: Sendable, Hashable, CustomStringConvertible {
    public var memoryBytes: Int
    public var vcpus: Int

    public init(memoryBytes: Int, vcpus: Int) {
        self.memoryBytes = memoryBytes
        self.vcpus = vcpus
    }

    public var description: String { "\(vcpus) vCPU, \(memoryBytes) bytes" }
}

/// Where a VM is in its life.
public enum MicroVMState: Sendable, Equatable {
    /// Created with its memory and vCPUs, threads waiting; not yet running guest code.
    case ready
    case running
    case paused
    case exited(MicroVMExit)
}

/// When a start's milestones happened (monotonic clock).
public struct MicroVMTiming: Sendable {
    /// When ``MicroVM/start()`` was called.
    public var started: ContinuousClock.Instant?
    /// When the boot vCPU first entered the guest (just before its first `KVM_RUN`).
    public var firstEntry: ContinuousClock.Instant?
    /// When the guest wrote the boot-timer port.
    public var bootTimer: ContinuousClock.Instant?
    /// When the guest first wrote to its serial port after this start (or restore).
    public var firstOutput: ContinuousClock.Instant?
}

/// A KVM microVM: guest memory, vCPUs each on its own thread, and the devices the guests use
/// (serial port COM1, the boot-timer port, the sleep port; see docs/hypervisor.md).
///
/// Life: ``init(kvm:shape:)`` creates the VM with its threads waiting (this is what a pool keeps),
/// ``boot(_:commandLine:console:)`` loads an image and starts it; ``pause()``, ``resume()``,
/// ``stop()``; ``waitUntilExited()``. A VM that triple-faults or that KVM cannot run ends
/// `.crashed(reason)`; nothing it does can end the process.
public final class MicroVM: @unchecked Sendable {
    public let shape: MicroVMShape
    let kvm: KVMSystem
    let vmFD: Int32
    let memory: GuestMemory
    let vcpus: [VirtualCPU]
    /// Boot and exit notifications; finishes after the exit.
    public let events: AsyncStream<MicroVMEvent>
    private let eventSink: AsyncStream<MicroVMEvent>.Continuation

    // Everything below is guarded by `lock`, whose condition wakes waiting vCPU threads.
    private let lock = NSCondition()
    private var phase: MicroVMState = .ready
    private var parked = 0
    /// vCPU threads started and not yet out of their run loop (counted from their start, so a
    /// thread that has not begun to run counts too).
    private var threadsInRunLoop = 0
    /// Set by ``release()``: the memory and KVM objects are given back, and `deinit` finds nothing.
    private var released = false
    /// Callers other than the vCPU threads using the memory or the KVM objects now (a snapshot,
    /// a boot loading its image): ``release()`` waits for them too.
    private var borrowers = 0

    /// How many callers use the memory or the KVM objects now, besides the vCPU threads.
    var borrowersNow: Int {
        lock.lock()
        defer { lock.unlock() }
        return borrowers
    }

    /// How many vCPU threads are still in their run loop (0 once a stopped VM's threads are done).
    var vcpuThreadsRunning: Int {
        lock.lock()
        defer { lock.unlock() }
        return threadsInRunLoop
    }
    private var haltedVCPUs: Set<Int> = []
    private var pauseWaiters: [CheckedContinuation<Void, Never>] = []
    private var exitWaiters: [CheckedContinuation<MicroVMExit, Never>] = []
    private var console: SerialConsole?
    private var startTiming = MicroVMTiming()
    /// Set while the boot vCPU pre-faults low memory (pooled VMs); ``boot(_:commandLine:console:)`` waits for it.
    private var prefaulting = false

    /// Ports the guests use (guests/guest.h).
    static let com1: UInt16 = 0x3f8
    static let bootTimerPort: UInt16 = 0x440
    static let bootTimerMagic: UInt64 = 123
    static let sleepPort: UInt16 = 0x441

    /// Creates a VM of `shape` with fresh memory set up for a 64-bit boot, its vCPU threads waiting.
    ///
    /// With `prefault` (what the pool asks for), the boot vCPU's thread first runs a few instructions
    /// that touch every page of the low 2 MiB (tables, boot data, stack, the image's place), so
    /// neither the host nor KVM has to fault them in when the VM boots: on nested virtualization
    /// each such fault costs tens of microseconds.
    public convenience init(kvm: KVMSystem, shape: MicroVMShape, prefault: Bool = false) throws {
        try Self.checkShape(shape)
        try self.init(kvm: kvm, shape: shape, memory: try GuestMemory.anonymous(size: shape.memoryBytes))
        BootLayout.writeTables(into: memory)
        for cpu in vcpus {
            try cpu.setSpecialRegisters(BootLayout.longModeSpecialRegisters(from: try cpu.specialRegisters()))
        }
        if prefault {
            BootLayout.writePrefaultLoop(into: memory)
            try vcpus[0].setRegisters(BootLayout.prefaultRegisters(memoryBytes: UInt64(shape.memoryBytes)))
            prefaulting = true
        }
        startThreads()
    }

    /// Creates the VM around `memory` without starting threads (``restore(kvm:from:console:)`` sets state first).
    init(kvm: KVMSystem, shape: MicroVMShape, memory: GuestMemory) throws {
        let vmFD = ckvm_create_vm(kvm.fd)
        guard vmFD >= 0 else { throw HypervisorError.system("KVM_CREATE_VM") }
        var cpus: [VirtualCPU] = []
        do {
            guard ckvm_set_tss_addr(vmFD, 0xfffb_d000) == 0 else { throw HypervisorError.system("KVM_SET_TSS_ADDR") }
            guard ckvm_set_user_memory_region(vmFD, 0, 0, UInt64(memory.size), memory.base) == 0 else {
                throw HypervisorError.system("KVM_SET_USER_MEMORY_REGION of \(memory.size) bytes")
            }
            for index in 0..<shape.vcpus { cpus.append(try VirtualCPU(vm: vmFD, index: index, kvm: kvm)) }
        } catch {
            cpus.removeAll()
            close(vmFD)
            throw error
        }
        self.kvm = kvm
        self.shape = shape
        self.vmFD = vmFD
        self.memory = memory
        self.vcpus = cpus
        (events, eventSink) = AsyncStream.makeStream(of: MicroVMEvent.self)
    }

    deinit {
        console?.close()
        // Unmapping the guest's memory and destroying the KVM VM take time in proportion to the
        // memory the guest touched (milliseconds per GiB, more under nested virtualization), and
        // the last reference often goes on an event loop (the host agent's task that watched the
        // VM). So they happen on a queue of their own, explicitly: whichever reference to the
        // memory or a vCPU goes last afterwards finds nothing left to free.
        guard !released else { return }
        let (vmFD, memory, vcpus) = (vmFD, memory, vcpus)
        Self.releaseQueue.async { Self.release(vmFD: vmFD, memory: memory, vcpus: vcpus) }
    }

    private static func release(vmFD: Int32, memory: GuestMemory, vcpus: [VirtualCPU]) {
        for cpu in vcpus { cpu.release() }
        close(vmFD)
        memory.unmap()
    }

    /// Gives an ended VM's guest memory and KVM objects back now, on the release queue, and returns
    /// once they are: after its vCPU threads have left their run loop. A host agent calls it
    /// before it forgets a VM that ended, so the memory it still counts is memory still mapped
    /// (HostAgent: a start waits for the memory ended VMs hold). Nothing may use the VM afterwards.
    public func release() async {
        let exited = if case .exited = state { true } else { false }
        precondition(exited, "release() of a VM that has not ended")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Self.releaseQueue.async { [self] in
                // Blocking here is what this queue is for; the threads are leaving the guest already.
                lock.lock()
                while threadsInRunLoop > 0 || borrowers > 0 { lock.wait() }
                let first = !released
                released = true
                lock.unlock()
                if first { Self.release(vmFD: vmFD, memory: memory, vcpus: vcpus) }
                continuation.resume()
            }
        }
    }

    /// Where ended VMs give back their memory and KVM objects (see `deinit`).
    static let releaseQueue = DispatchQueue(label: "dwcp.microvm-release", qos: .utility)

    /// The most vCPUs a microVM has (the API refuses VMs with more).
    public static let maxVCPUs = 64

    static func checkShape(_ shape: MicroVMShape) throws {
        guard shape.vcpus >= 1, shape.vcpus <= maxVCPUs else {
            throw HypervisorError(.invalidRequest, "a microVM has 1-\(maxVCPUs) vCPUs, not \(shape.vcpus)")
        }
        guard shape.memoryBytes >= 2 << 20, shape.memoryBytes % 4096 == 0 else {
            throw HypervisorError(
                .invalidRequest,
                "a microVM needs at least 2MiB of memory in whole pages, not \(shape.memoryBytes) bytes")
        }
    }

    func startThreads() {
        lock.lock()
        threadsInRunLoop += vcpus.count
        lock.unlock()
        for cpu in vcpus {
            let thread = Thread { [self] in self.runLoop(cpu) }
            thread.stackSize = 1 << 18
            thread.name = "vcpu-\(cpu.index)"
            thread.start()
        }
    }

    /// Blocks until a pooled VM's pre-faulting is done (at once for other VMs).
    func waitUntilPrefaulted() {
        lock.lock()
        while prefaulting { lock.wait() }
        lock.unlock()
    }

    // MARK: Control

    /// The longest command line a guest is given, in bytes (UTF-8): its boot parameters hold 256
    /// with the terminating NUL.
    public static let maxCommandLineBytes = BootLayout.commandLineSize - 1

    /// Loads `image` with its command line and starts it; `console` receives its serial output.
    public func boot(_ image: GuestImage, commandLine: String = "", console: SerialConsole?) throws {
        lock.lock()
        while prefaulting { lock.wait() }
        lock.unlock()
        guard let state = borrow() else { throw HypervisorError(.invalidRequest, "the VM was released") }
        defer { giveBack() }
        guard state == .ready else { throw HypervisorError(.invalidRequest, "the VM was already started") }
        try BootLayout.load(image, commandLine: commandLine, into: memory)
        for cpu in vcpus { try cpu.setRegisters(BootLayout.entryRegisters(vcpu: cpu.index, entry: image.entry)) }
        try start(console: console)
    }

    /// Lets the vCPU threads run the guest from the state they hold.
    func start(console: SerialConsole?) throws {
        lock.lock()
        defer { lock.unlock() }
        guard phase == .ready else { throw HypervisorError(.invalidRequest, "the VM was already started") }
        self.console = console
        startTiming.started = .now
        phase = .running
        lock.broadcast()
    }

    /// Stops the vCPUs at their next instruction boundary and returns once every one is parked with
    /// its pending I/O completed (so its state can be read). A VM that is not running is left as is.
    public func pause() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            lock.lock()
            defer { lock.unlock() }
            guard phase == .running else { return continuation.resume() }
            phase = .paused
            kickAll()
            lock.broadcast()  // a vCPU waiting on the sleep port parks now, not when its sleep ends
            if parked == vcpus.count { continuation.resume() } else { pauseWaiters.append(continuation) }
        }
    }

    /// Continues a paused VM.
    public func resume() {
        lock.lock()
        defer { lock.unlock() }
        guard phase == .paused else { return }
        phase = .running
        lock.broadcast()
    }

    /// Ends the VM (its threads leave the guest at once); a VM that already ended keeps its exit.
    public func stop() { finish(.stopped) }

    /// Waits until the VM has ended, and says how.
    public func waitUntilExited() async -> MicroVMExit {
        await withCheckedContinuation { (continuation: CheckedContinuation<MicroVMExit, Never>) in
            lock.lock()
            defer { lock.unlock() }
            if case .exited(let exit) = phase { return continuation.resume(returning: exit) }
            exitWaiters.append(continuation)
        }
    }

    public var state: MicroVMState {
        lock.lock()
        defer { lock.unlock() }
        return phase
    }

    public var timing: MicroVMTiming {
        lock.lock()
        defer { lock.unlock() }
        return startTiming
    }

    /// Guest memory resident in this process (pages the guest or the VMM touched); 0 once released.
    public var residentGuestBytes: Int {
        guard borrow() != nil else { return 0 }
        defer { giveBack() }
        return memory.residentPages() * 4096
    }

    /// Keeps the memory and the KVM objects until ``giveBack()`` (``release()`` waits) and returns
    /// the VM's state; nil, keeping nothing, once they were released.
    func borrow() -> MicroVMState? {
        lock.lock()
        defer { lock.unlock() }
        guard !released else { return nil }
        borrowers += 1
        return phase
    }

    /// Ends a ``borrow()``.
    func giveBack() {
        lock.lock()
        borrowers -= 1
        lock.broadcast()  // ``release()`` waits for the last one
        lock.unlock()
    }

    private func finish(_ exit: MicroVMExit) {
        lock.lock()
        if case .exited = phase {
            lock.unlock()
            return
        }
        phase = .exited(exit)
        let exitWaiters = self.exitWaiters
        let pauseWaiters = self.pauseWaiters
        self.exitWaiters = []
        self.pauseWaiters = []
        kickAll()
        lock.broadcast()
        let console = self.console
        lock.unlock()
        console?.flush()
        for waiter in pauseWaiters { waiter.resume() }
        for waiter in exitWaiters { waiter.resume(returning: exit) }
        eventSink.yield(.exited(exit))
        eventSink.finish()
    }

    /// Makes every vCPU leave `KVM_RUN`: `immediate_exit` covers a thread about to enter, the signal
    /// one already inside. Called with `lock` held.
    private func kickAll() {
        for cpu in vcpus {
            ckvm_set_immediate_exit(cpu.run, 1)
            if let thread = cpu.thread { _ = ckvm_kick(thread, KVMSystem.kickSignal) }
        }
    }

    // MARK: The vCPU threads

    private func runLoop(_ cpu: VirtualCPU) {
        // The kick must reach this thread inside KVM_RUN: it may have inherited a mask that blocks
        // it (threads made from Dispatch's workers do), and then stop and pause never interrupted
        // a guest busy without exits.
        _ = ckvm_unblock_signal(KVMSystem.kickSignal)
        defer {
            lock.lock()
            threadsInRunLoop -= 1
            lock.broadcast()  // ``release()`` waits for the last one
            lock.unlock()
        }
        lock.lock()
        cpu.thread = pthread_self()
        let prefault = prefaulting && cpu.index == 0
        lock.unlock()
        if prefault {
            // Runs on this thread (KVM binds a vCPU to the thread that runs it; moving it is slow).
            // A stop meanwhile kicks the thread out with `immediate_exit` set, which every later
            // KVM_RUN would return at once: it ends the pre-faulting, not just this run.
            while ckvm_run(cpu.fd) == 0 || errno == EINTR {
                if Int(ckvm_exit_reason(cpu.run)) != CKVM_EXIT_INTR { break }
                if case .exited = state { break }
            }
            lock.lock()
            prefaulting = false
            lock.broadcast()
            lock.unlock()
        }
        // The last exit was port or MMIO I/O, which KVM completes on the next KVM_RUN; before the
        // vCPU parks, it must be completed so the saved state is consistent.
        var pendingIO = false
        while true {
            lock.lock()
            var runGuest = false
            while !runGuest {
                switch phase {
                case .exited:
                    lock.unlock()
                    return
                case .ready:
                    lock.wait()
                case .running where !haltedVCPUs.contains(cpu.index):
                    ckvm_set_immediate_exit(cpu.run, 0)
                    if cpu.index == 0, startTiming.firstEntry == nil { startTiming.firstEntry = .now }
                    runGuest = true
                case .running, .paused:
                    if pendingIO {
                        lock.unlock()
                        ckvm_set_immediate_exit(cpu.run, 1)
                        _ = ckvm_run(cpu.fd)  // completes the I/O, then returns EINTR
                        pendingIO = false
                        lock.lock()
                        continue
                    }
                    parked += 1
                    if phase == .paused, parked == vcpus.count {
                        for waiter in pauseWaiters { waiter.resume() }
                        pauseWaiters = []
                    }
                    lock.wait()
                    parked -= 1
                }
            }
            lock.unlock()
            if ckvm_run(cpu.fd) < 0 {
                let code = errno
                if code == EINTR || code == EAGAIN {
                    pendingIO = false
                    continue
                }
                finish(.crashed("KVM_RUN failed on vCPU \(cpu.index): \(String(cString: strerror(code)))"))
                continue
            }
            pendingIO = false
            let reason = Int(ckvm_exit_reason(cpu.run))
            switch reason {
            case CKVM_EXIT_IO:
                pendingIO = true
                handlePortIO(cpu.run)
            case CKVM_EXIT_MMIO:
                pendingIO = true
                if ckvm_mmio_is_write(cpu.run) == 0 {
                    memset(ckvm_mmio_data(cpu.run), 0xff, Int(min(ckvm_mmio_length(cpu.run), 8)))
                }
            case CKVM_EXIT_HLT:
                if cpu.index == 0 {
                    finish(.halted)
                } else {
                    lock.lock()
                    haltedVCPUs.insert(cpu.index)
                    lock.unlock()
                }
            case CKVM_EXIT_INTR:
                continue
            case CKVM_EXIT_SHUTDOWN:
                finish(.crashed("triple fault: the guest raised an exception it could not handle (vCPU \(cpu.index))"))
            case CKVM_EXIT_FAIL_ENTRY:
                finish(
                    .crashed(
                        "KVM could not enter the guest (hardware reason 0x\(String(ckvm_fail_entry_reason(cpu.run), radix: 16)))"
                    ))
            case CKVM_EXIT_INTERNAL_ERROR:
                let suberror = ckvm_internal_suberror(cpu.run)
                let what = suberror == 1 ? "an instruction it could not emulate" : "suberror \(suberror)"
                finish(.crashed("KVM internal error on vCPU \(cpu.index): \(what)"))
            default:
                finish(.crashed("unexpected KVM exit \(reason) on vCPU \(cpu.index)"))
            }
        }
    }

    private func handlePortIO(_ run: UnsafeMutablePointer<kvm_run>) {
        let port = ckvm_io_port(run)
        let size = Int(ckvm_io_size(run))
        let count = Int(ckvm_io_count(run))
        let data = ckvm_io_data(run)!
        let isOut = Int(ckvm_io_direction(run)) == CKVM_EXIT_IO_OUT
        for i in 0..<count {
            let item = data + i * size
            if isOut {
                var value: UInt64 = 0
                for b in 0..<size { value |= UInt64(item[b]) << (8 * UInt64(b)) }
                portWrite(port, value)
            } else {
                let value = portRead(port)
                for b in 0..<size { item[b] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(b))) }
            }
        }
    }

    private func portWrite(_ port: UInt16, _ value: UInt64) {
        switch port {
        case Self.com1:
            lock.lock()
            let console = self.console
            if startTiming.firstOutput == nil { startTiming.firstOutput = .now }
            lock.unlock()
            console?.append(UInt8(truncatingIfNeeded: value))
        case Self.bootTimerPort where value & 0xff == Self.bootTimerMagic:
            let now = ContinuousClock.now
            lock.lock()
            let first = startTiming.bootTimer == nil
            if first { startTiming.bootTimer = now }
            lock.unlock()
            if first { eventSink.yield(.booted(now)) }
        case Self.sleepPort:
            sleep(milliseconds: Int(value & 0xffff_ffff))
        default:
            break  // ports without a device ignore writes
        }
    }

    private func portRead(_ port: UInt16) -> UInt64 {
        switch port {
        case Self.com1 + 5: 0x60  // line status: transmitter empty, ready for the next byte
        case Self.com1...(Self.com1 + 7): 0
        default: 0xffff_ffff  // no device: the bus floats high
        }
    }

    /// The sleep port: waits while the VM runs, returning early on pause or stop.
    private func sleep(milliseconds: Int) {
        let deadline = Date(timeIntervalSinceNow: Double(milliseconds) / 1000)
        lock.lock()
        while phase == .running, Date() < deadline { _ = lock.wait(until: deadline) }
        lock.unlock()
    }
}
