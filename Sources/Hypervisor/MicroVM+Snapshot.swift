import CChecksum
import CKVM
import Foundation

/// Snapshots, split as Firecracker splits them: `DIR/vmstate` holds the machine state (per vCPU:
/// registers, special registers, FPU, XSAVE area, XCRs, pending events, MSRs) with a CRC-32C, and
/// `DIR/memory` holds guest memory as a sparse file (pages of zeros are holes). A restore maps the
/// memory file copy-on-write, so its cost does not grow with the memory size; the guest reads
/// pages from the file as it touches them. No interrupt controller is emulated, so there is no
/// irqchip state to save.
extension MicroVM {
    static let snapshotMagic = Array("DWCPSNAP".utf8)
    static let snapshotVersion: UInt32 = 1
    /// The MSRs a snapshot keeps when the CPU has them: TSC, SYSENTER, PAT, MISC_ENABLE, the
    /// SYSCALL MSRs and KERNEL_GS_BASE (EFER is part of the special registers).
    static let snapshotMSRs: [UInt32] = [
        0x10, 0x174, 0x175, 0x176, 0x1a0, 0x277, 0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084, 0xC000_0102,
    ]

    /// Writes the VM's state and memory to `directory`. The VM must be paused; it stays paused.
    public func snapshot(to directory: String) throws {
        // Kept while it is written: a ``release()`` meanwhile waits for it (and holds up the
        // release queue as long; the agent takes no snapshots today).
        guard let state = borrow() else {
            throw HypervisorError(.invalidRequest, "a snapshot needs a paused VM; this one was released")
        }
        defer { giveBack() }
        guard state == .paused else {
            throw HypervisorError(.invalidRequest, "a snapshot needs a paused VM; this one is \(state)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var out = SnapshotWriter()
        out.bytes(Self.snapshotMagic)
        out.u32(Self.snapshotVersion)
        out.u64(UInt64(memory.size))
        out.u32(UInt32(vcpus.count))
        for cpu in vcpus {
            var regs = try cpu.registers()
            var sregs = try cpu.specialRegisters()
            var fpu = kvm_fpu()
            try cpu.check(ckvm_get_fpu(cpu.fd, &fpu), "KVM_GET_FPU")
            var xsave = kvm_xsave()
            try cpu.check(ckvm_get_xsave(cpu.fd, &xsave), "KVM_GET_XSAVE")
            var xcrs = kvm_xcrs()
            try cpu.check(ckvm_get_xcrs(cpu.fd, &xcrs), "KVM_GET_XCRS")
            var events = kvm_vcpu_events()
            try cpu.check(ckvm_get_vcpu_events(cpu.fd, &events), "KVM_GET_VCPU_EVENTS")
            out.raw(&sregs)
            out.raw(&regs)
            out.raw(&fpu)
            out.raw(&xsave)
            out.raw(&xcrs)
            out.raw(&events)
            var msrs: [(UInt32, UInt64)] = []
            for index in Self.snapshotMSRs {
                var value: UInt64 = 0
                var msrIndex = index
                if ckvm_get_msrs(cpu.fd, 1, &msrIndex, &value) == 1 { msrs.append((index, value)) }
            }
            out.u32(UInt32(msrs.count))
            for (index, value) in msrs {
                out.u32(index)
                out.u64(value)
            }
        }
        out.u32(snapshotChecksum(out.data))
        try Data(out.data).write(to: URL(fileURLWithPath: directory + "/vmstate"), options: .atomic)
        try writeMemory(to: directory + "/memory")
    }

    /// Writes guest memory as a sparse file: runs of non-zero pages are written, zero pages left as holes.
    private func writeMemory(to path: String) throws {
        let temporary = path + ".partial"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw HypervisorError.system("open \(temporary)") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(memory.size)) == 0 else { throw HypervisorError.system("ftruncate \(temporary)") }
        let page = 4096
        let zero = [UInt8](repeating: 0, count: page)
        var offset = 0
        var runStart: Int?
        func flushRun(to end: Int) throws {
            guard let start = runStart else { return }
            var written = 0
            while written < end - start {
                let n = pwrite(fd, memory.base + start + written, end - start - written, off_t(start + written))
                guard n > 0 else { throw HypervisorError.system("write \(temporary)") }
                written += n
            }
            runStart = nil
        }
        try zero.withUnsafeBytes { zeroPage in
            while offset < memory.size {
                let isZero = memcmp(memory.base + offset, zeroPage.baseAddress!, page) == 0
                if isZero {
                    try flushRun(to: offset)
                } else if runStart == nil {
                    runStart = offset
                }
                offset += page
            }
            try flushRun(to: memory.size)
        }
        guard fsync(fd) == 0 else { throw HypervisorError.system("fsync \(temporary)") }
        guard rename(temporary, path) == 0 else { throw HypervisorError.system("rename \(temporary)") }
    }

    /// Creates a VM from the snapshot in `directory`, ready: ``resumeRestored(console:)`` runs it on
    /// from the instruction where it was paused.
    public static func restore(kvm: KVMSystem, from directory: String) throws -> MicroVM {
        guard let data = FileManager.default.contents(atPath: directory + "/vmstate") else {
            throw HypervisorError(.invalidSnapshot, "no snapshot state at \(directory)/vmstate")
        }
        let bytes = [UInt8](data)
        guard bytes.count > 12 else {
            throw HypervisorError(.invalidSnapshot, "snapshot state \(directory) is truncated")
        }
        var reader = SnapshotReader(bytes: bytes.dropLast(4), directory: directory)
        let stored = SnapshotReader(bytes: bytes.suffix(4), directory: directory).peekU32()
        guard stored == snapshotChecksum(Array(bytes.dropLast(4))) else {
            throw HypervisorError(
                .invalidSnapshot, "snapshot state \(directory)/vmstate is damaged (checksum mismatch)")
        }
        guard try reader.take(8) == snapshotMagic else {
            throw HypervisorError(.invalidSnapshot, "\(directory)/vmstate is not a DWCP snapshot")
        }
        let version = try reader.u32()
        guard version == snapshotVersion else {
            throw HypervisorError(
                .invalidSnapshot, "snapshot \(directory) is of format \(version), not \(snapshotVersion)")
        }
        // (Checked, not converted: a foreign file whose checksum holds must not trap.)
        guard let memoryBytes = Int(exactly: try reader.u64()) else {
            throw HypervisorError(.invalidSnapshot, "snapshot \(directory) names a memory size no VM has")
        }
        let vcpuCount = Int(try reader.u32())
        let shape = MicroVMShape(memoryBytes: memoryBytes, vcpus: vcpuCount)
        try checkShape(shape)
        let memory = try GuestMemory.copyOnWrite(path: directory + "/memory", size: memoryBytes)
        let vm = try MicroVM(kvm: kvm, shape: shape, memory: memory)
        for cpu in vm.vcpus {
            var sregs = kvm_sregs()
            var regs = kvm_regs()
            var fpu = kvm_fpu()
            var xsave = kvm_xsave()
            var xcrs = kvm_xcrs()
            var events = kvm_vcpu_events()
            try reader.raw(&sregs)
            try reader.raw(&regs)
            try reader.raw(&fpu)
            try reader.raw(&xsave)
            try reader.raw(&xcrs)
            try reader.raw(&events)
            try cpu.setSpecialRegisters(sregs)
            try cpu.setRegisters(regs)
            try cpu.check(ckvm_set_fpu(cpu.fd, &fpu), "KVM_SET_FPU")
            try cpu.check(ckvm_set_xsave(cpu.fd, &xsave), "KVM_SET_XSAVE")
            try cpu.check(ckvm_set_xcrs(cpu.fd, &xcrs), "KVM_SET_XCRS")
            let msrCount = Int(try reader.u32())
            var indices: [UInt32] = []
            var values: [UInt64] = []
            for _ in 0..<msrCount {
                indices.append(try reader.u32())
                values.append(try reader.u64())
            }
            if msrCount > 0, ckvm_set_msrs(cpu.fd, UInt32(msrCount), indices, values) != Int32(msrCount) {
                throw HypervisorError(
                    .invalidSnapshot, "KVM refused the MSRs saved in \(directory) for vCPU \(cpu.index)")
            }
            try cpu.check(ckvm_set_vcpu_events(cpu.fd, &events), "KVM_SET_VCPU_EVENTS")
        }
        vm.startThreads()
        return vm
    }

    /// Runs a restored VM on from its saved state.
    public func resumeRestored(console: SerialConsole?) throws {
        try start(console: console)
    }
}

/// CRC-32C of a snapshot's state file (hardware when available, else bit by bit: the file is small).
func snapshotChecksum(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { buffer in
        if dwcp_crc32c_hardware_available() == 1 {
            return ~dwcp_crc32c_hardware(0xffff_ffff, buffer.baseAddress, buffer.count)
        }
        var crc: UInt32 = 0xffff_ffff
        for byte in buffer {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}

/// Appends little-endian numbers and length-prefixed raw kernel structures.
struct SnapshotWriter {
    var data: [UInt8] = []
    mutating func bytes(_ b: [UInt8]) { data += b }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func raw<T>(_ value: inout T) {
        u32(UInt32(MemoryLayout<T>.size))
        withUnsafeBytes(of: &value) { data += $0 }
    }
}

/// Reads what ``SnapshotWriter`` wrote; a short or mis-sized field is a damaged snapshot.
struct SnapshotReader {
    let bytes: [UInt8]
    let directory: String
    var offset = 0

    init<C: Collection>(bytes: C, directory: String) where C.Element == UInt8 {
        self.bytes = Array(bytes)
        self.directory = directory
    }

    mutating func take(_ n: Int) throws -> [UInt8] {
        guard offset + n <= bytes.count else {
            throw HypervisorError(.invalidSnapshot, "snapshot state \(directory)/vmstate is truncated")
        }
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    func peekU32() -> UInt32 {
        bytes.prefix(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    mutating func u32() throws -> UInt32 {
        try take(4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    mutating func u64() throws -> UInt64 {
        try take(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    mutating func raw<T>(_ value: inout T) throws {
        let size = Int(try u32())
        guard size == MemoryLayout<T>.size else {
            throw HypervisorError(
                .invalidSnapshot,
                "snapshot \(directory) holds a \(T.self) of \(size) bytes; this build's is \(MemoryLayout<T>.size)")
        }
        let raw = try take(size)
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: raw) }
    }
}
