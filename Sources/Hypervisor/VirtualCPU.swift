import CKVM
import Foundation

/// One vCPU: its KVM file descriptor and the `kvm_run` page shared with the kernel. Its run loop is
/// in ``MicroVM``; this type only owns the resources and reads and writes register state.
final class VirtualCPU: @unchecked Sendable {
    let index: Int
    let fd: Int32
    let run: UnsafeMutablePointer<kvm_run>
    private let mapSize: Int
    /// The thread running this vCPU, for kicks; written once by that thread under the VM's lock.
    var thread: pthread_t?

    init(vm: Int32, index: Int, kvm: KVMSystem) throws {
        let fd = ckvm_create_vcpu(vm, Int32(index))
        guard fd >= 0 else { throw HypervisorError.system("KVM_CREATE_VCPU \(index)") }
        guard let page = ckvm_map_shared(fd, kvm.vcpuMapSize) else {
            close(fd)
            throw HypervisorError.system("mmap of the kvm_run page of vCPU \(index)")
        }
        guard ckvm_set_cpuid(fd, kvm.cpuid, UInt32(index)) == 0 else {
            munmap(page, kvm.vcpuMapSize)
            close(fd)
            throw HypervisorError.system("KVM_SET_CPUID2 on vCPU \(index)")
        }
        self.index = index
        self.fd = fd
        self.run = page.assumingMemoryBound(to: kvm_run.self)
        self.mapSize = kvm.vcpuMapSize
    }

    /// Whether the fd and the `kvm_run` page are still held; only ``release()`` clears it.
    private(set) var held = true

    deinit { release() }

    /// Closes the vCPU now, wherever the last reference goes later (``MicroVM`` does this on its
    /// release queue). Nothing may use the vCPU afterwards.
    func release() {
        guard held else { return }
        munmap(run, mapSize)
        close(fd)
        held = false
    }

    func check(_ result: Int32, _ what: String) throws {
        guard result >= 0 else { throw HypervisorError.system("\(what) on vCPU \(index)") }
    }

    func specialRegisters() throws -> kvm_sregs {
        var sregs = kvm_sregs()
        try check(ckvm_get_sregs(fd, &sregs), "KVM_GET_SREGS")
        return sregs
    }

    func setSpecialRegisters(_ sregs: kvm_sregs) throws {
        var sregs = sregs
        try check(ckvm_set_sregs(fd, &sregs), "KVM_SET_SREGS")
    }

    func registers() throws -> kvm_regs {
        var regs = kvm_regs()
        try check(ckvm_get_regs(fd, &regs), "KVM_GET_REGS")
        return regs
    }

    func setRegisters(_ regs: kvm_regs) throws {
        var regs = regs
        try check(ckvm_set_regs(fd, &regs), "KVM_SET_REGS")
    }
}
