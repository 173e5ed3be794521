import Synchronization

/// Pre-warmed VMs of one shape: created, memory registered, page tables written, vCPUs set for
/// 64-bit mode and their threads waiting, so a start only loads the image and lets them run.
/// ``take()`` hands one out; ``refill()`` (run by the host agent after each take) creates more.
public final class MicroVMPool: Sendable {
    public let shape: MicroVMShape
    public let size: Int
    private let kvm: KVMSystem
    private let ready: Mutex<[MicroVM]>

    public init(kvm: KVMSystem, shape: MicroVMShape, size: Int) {
        self.kvm = kvm
        self.shape = shape
        self.size = size
        ready = Mutex([])
    }

    /// A pre-warmed VM, or nil when the pool is empty.
    public func take() -> MicroVM? {
        ready.withLock { $0.popLast() }
    }

    public var count: Int { ready.withLock { $0.count } }

    /// Creates VMs until the pool is full again.
    public func refill() throws {
        while count < size {
            let vm = try MicroVM(kvm: kvm, shape: shape, prefault: true)
            vm.waitUntilPrefaulted()
            let surplus = ready.withLock { vms -> MicroVM? in
                guard vms.count < size else { return vm }
                vms.append(vm)
                return nil
            }
            surplus?.stop()
        }
    }

    /// Ends every pre-warmed VM (their threads exit and their memory is freed).
    public func drain() {
        let vms = ready.withLock { vms -> [MicroVM] in
            defer { vms = [] }
            return vms
        }
        for vm in vms { vm.stop() }
    }
}
