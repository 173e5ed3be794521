import Hypervisor
import Testing

extension Trait where Self == ConditionTrait {
    /// Runs a test or suite only with a usable `/dev/kvm`; skipped otherwise, saying why.
    static var needsKVM: Self {
        .enabled(
            if: KVMSystem.unavailableReason == nil,
            Comment(rawValue: "needs a usable /dev/kvm: \(KVMSystem.unavailableReason ?? "")"))
    }
}
