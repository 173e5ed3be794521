import CKVM

/// Where the VMM puts what a guest needs to start in 64-bit mode, below the image at 1 MiB:
///
///     0x0500  GDT: null, 64-bit code (0x08), data (0x10)
///     0x0600  boot parameters (struct boot_params in guests/guest.h)
///     0x1000  PML4      0x2000  PDPT
///     0x7000  `hlt; jmp .-1`: where vCPUs other than the first wait
///     0x1_0000...0x5_0000  one page directory per GiB (2 MiB pages), 64 at most
///     0x8_0000 initial stack top (guests switch to their own)
///
/// (The page directories began at 0x3000 until the fifth, a VM past 4 GiB's, ran into the park loop.)
///
/// Guest memory is identity-mapped up to its size (at most 64 GiB).
enum BootLayout {
    static let gdtAddress: UInt64 = 0x500
    static let parametersAddress: UInt64 = 0x600
    static let pml4Address: UInt64 = 0x1000
    static let pdptAddress: UInt64 = 0x2000
    static let pageDirectoriesAddress: UInt64 = 0x1_0000
    static let parkAddress: UInt64 = 0x7000
    static let stackTop: UInt64 = 0x8_0000
    static let maxMappedBytes: UInt64 = 64 << 30
    static let parametersMagic: UInt32 = 0x4457_4350
    static let commandLineSize = 256

    /// Writes page tables, GDT and the park loop: the part that does not depend on the image.
    static func writeTables(into memory: GuestMemory) {
        let mapped = min(UInt64(memory.size), maxMappedBytes)
        let directories = Int((mapped + (1 << 30) - 1) >> 30)
        memory.write(pdptAddress | 0x3, at: pml4Address)
        for d in 0..<directories {
            let directory = pageDirectoriesAddress + UInt64(d) * 0x1000
            memory.write(directory | 0x3, at: pdptAddress + UInt64(d) * 8)
            var entries = [UInt64](repeating: 0, count: 512)
            for e in 0..<512 {
                let address = (UInt64(d) << 30) | (UInt64(e) << 21)
                if address < mapped { entries[e] = address | 0x83 }  // present, writable, 2 MiB page
            }
            entries.withUnsafeBytes { memory.write($0, at: directory) }
        }
        let gdt: [UInt64] = [0, 0x0020_9a00_0000_0000, 0x0000_9200_0000_0000]
        gdt.withUnsafeBytes { memory.write($0, at: gdtAddress) }
        let park: [UInt8] = [0xf4, 0xeb, 0xfd]  // hlt; jmp back to hlt
        park.withUnsafeBytes { memory.write($0, at: parkAddress) }
    }

    /// Copies the image's segments and writes the boot parameters.
    static func load(_ image: GuestImage, commandLine: String, into memory: GuestMemory) throws {
        // (Refused, not cut: a cut line changes what the guest is told, `working_set=16M` read as 16.)
        guard commandLine.utf8.count < commandLineSize else {
            throw HypervisorError(
                .invalidRequest,
                "the guest's command line is \(commandLine.utf8.count) bytes; at most \(commandLineSize - 1) fit")
        }
        guard image.end <= UInt64(memory.size) else {
            throw HypervisorError(
                .invalidRequest,
                "image \(image.reference) needs at least \(image.minimumMemoryBytes) bytes of memory; the VM has \(memory.size)"
            )
        }
        for segment in image.segments {
            segment.bytes.withUnsafeBytes { memory.write($0, at: segment.guestAddress) }
            // Fresh memory is zero; a reused (pooled) VM is fresh as well, so bss needs no clearing.
        }
        var parameters = [UInt8](repeating: 0, count: 24 + commandLineSize)
        func put(_ value: UInt64, at offset: Int, bytes: Int) {
            for i in 0..<bytes { parameters[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        put(UInt64(parametersMagic), at: 0, bytes: 4)
        put(1, at: 4, bytes: 4)
        put(UInt64(memory.size), at: 8, bytes: 8)
        put((image.end + 0xfff) & ~0xfff, at: 16, bytes: 8)
        let line = Array(commandLine.utf8)
        parameters.replaceSubrange(24..<(24 + line.count), with: line)
        parameters.withUnsafeBytes { memory.write($0, at: parametersAddress) }
    }

    /// A loop at the park address that reads and rewrites one quadword per page from 0 up to
    /// `rsi`, then halts: it faults the pages in without changing them. Used once by pooled VMs.
    static func writePrefaultLoop(into memory: GuestMemory) {
        let code: [UInt8] = [
            0x48, 0x31, 0xff,  // xor rdi, rdi
            0x48, 0x8b, 0x87, 0xf8, 0x0f, 0x00, 0x00,  // loop: mov rax, [rdi + 0xff8]
            0x48, 0x89, 0x87, 0xf8, 0x0f, 0x00, 0x00,  // mov [rdi + 0xff8], rax
            0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,  // add rdi, 0x1000
            0x48, 0x39, 0xf7,  // cmp rdi, rsi
            0x72, 0xe6,  // jb loop
            0xf4,  // hlt
        ]
        code.withUnsafeBytes { memory.write($0, at: prefaultAddress) }
    }

    static let prefaultAddress: UInt64 = 0x7100
    static let prefaultBytes: UInt64 = 2 << 20

    static func prefaultRegisters(memoryBytes: UInt64) -> kvm_regs {
        var regs = kvm_regs()
        regs.rflags = 0x2
        regs.rip = prefaultAddress
        regs.rsi = min(prefaultBytes, memoryBytes)
        regs.rsp = stackTop
        return regs
    }

    /// Special registers for 64-bit mode with paging, starting from what KVM reports for a new vCPU.
    static func longModeSpecialRegisters(from initial: kvm_sregs) -> kvm_sregs {
        var sregs = initial
        var code = kvm_segment()
        code.base = 0
        code.limit = 0xffff_ffff
        code.selector = 0x08
        code.type = 11  // execute/read, accessed
        code.present = 1
        code.s = 1
        code.l = 1
        code.g = 1
        var data = code
        data.selector = 0x10
        data.type = 3  // read/write, accessed
        data.l = 0
        data.db = 1
        sregs.cs = code
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        sregs.gdt.base = gdtAddress
        sregs.gdt.limit = 3 * 8 - 1
        sregs.cr3 = pml4Address
        sregs.cr4 = 0x20 | 0x200 | 0x400  // PAE, OSFXSR, OSXMMEXCPT
        sregs.cr0 = 0x1 | 0x2 | 0x10 | 0x20 | 0x8000_0000  // PE, MP, ET, NE, PG
        sregs.efer = 0x100 | 0x400  // LME, LMA
        return sregs
    }

    /// General registers at entry: the first vCPU runs the image, the others wait in the park loop.
    static func entryRegisters(vcpu: Int, entry: UInt64) -> kvm_regs {
        var regs = kvm_regs()
        regs.rflags = 0x2
        regs.rsp = stackTop - UInt64(vcpu) * 0x1000
        regs.rip = vcpu == 0 ? entry : parkAddress
        regs.rdi = vcpu == 0 ? parametersAddress : 0
        return regs
    }
}
