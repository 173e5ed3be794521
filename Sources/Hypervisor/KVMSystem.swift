import CKVM
import Foundation

/// The host's `/dev/kvm`: opened once per process, checked for the API version and capabilities this
/// VMM needs, with the CPUID table KVM supports on this machine (given to every vCPU).
public final class KVMSystem: @unchecked Sendable {
    /// Where KVM lives.
    public static let devicePath = "/dev/kvm"
    /// The signal that kicks a vCPU thread out of `KVM_RUN`.
    static let kickSignal = SIGUSR2

    let fd: Int32
    let vcpuMapSize: Int
    /// The supported CPUID leaves, read once (KVM_GET_SUPPORTED_CPUID); immutable after init.
    let cpuid: UnsafeMutablePointer<kvm_cpuid2>
    /// How many vCPUs KVM recommends per VM.
    public let recommendedVCPUs: Int

    /// Opens `/dev/kvm` and checks it can run this VMM's guests.
    public init(path: String = KVMSystem.devicePath) throws {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw HypervisorError(
                .unavailable, "cannot open \(path): \(String(cString: strerror(code)))",
                cause: POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO))
        }
        func fail(_ message: String) -> HypervisorError {
            close(fd)
            return HypervisorError(.unavailable, message)
        }
        let version = ckvm_get_api_version(fd)
        guard version == KVM_API_VERSION else {
            throw fail("\(path) speaks KVM API \(version), not \(KVM_API_VERSION)")
        }
        for (capability, name) in [
            (CKVM_CAP_USER_MEMORY, "user memory"), (CKVM_CAP_IMMEDIATE_EXIT, "immediate exit"),
            (CKVM_CAP_XSAVE, "XSAVE state"), (CKVM_CAP_XCRS, "XCR state"),
        ] where ckvm_check_extension(fd, Int(capability)) <= 0 {
            throw fail("\(path) lacks the \(name) capability this VMM needs")
        }
        let mapSize = ckvm_get_vcpu_mmap_size(fd)
        guard mapSize > 0 else { throw fail("\(path) reports no vCPU mapping size") }
        guard let cpuid = ckvm_supported_cpuid(fd) else {
            throw fail("\(path): KVM_GET_SUPPORTED_CPUID failed: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.vcpuMapSize = Int(mapSize)
        self.cpuid = cpuid
        self.recommendedVCPUs = max(1, Int(ckvm_check_extension(fd, Int(CKVM_CAP_NR_VCPUS))))
        _ = ckvm_install_kick_handler(KVMSystem.kickSignal)
    }

    deinit {
        free(cpuid)
        close(fd)
    }

    /// This process's KVM, or why there is none (opened on first use).
    public static let shared: Result<KVMSystem, HypervisorError> = {
        do { return .success(try KVMSystem()) } catch let error as HypervisorError {
            return .failure(error)
        } catch {
            return .failure(HypervisorError(.unavailable, "\(error)"))
        }
    }()

    /// Why KVM cannot be used here, or nil when it can.
    public static var unavailableReason: String? {
        if case .failure(let error) = shared { return error.message }
        return nil
    }
}
