import Store

/// A change a client asks of the fleet. The node validates it, turns it into a ``Record`` and
/// proposes it; an intent that fails validation writes nothing.
public enum Intent: Sendable, Equatable {
    case addHost(HostAdded)
    case removeHost(name: String)
    case setHostLabels(name: String, labels: [String: String])
    case createVM(VMCreated)
    case setDesiredState(vm: String, VMDesiredState)
    case deleteVM(name: String)
    /// Gives a host up for its VMs: they are placed anew elsewhere (`dwcp host evacuate`).
    case evacuateHost(name: String)

    /// The record body this intent proposes.
    public var body: Record.Body {
        switch self {
        case .addHost(let r): .hostAdded(r)
        case .removeHost(let name): .hostRemoved(HostRemoved(name: name))
        case .setHostLabels(let name, let labels): .hostLabelsSet(HostLabelsSet(name: name, labels: labels))
        case .createVM(let r): .vmCreated(r)
        case .setDesiredState(let vm, let state): .vmDesiredStateSet(VMDesiredStateSet(name: vm, desiredState: state))
        case .deleteVM(let name): .vmDeleted(VMDeleted(name: name))
        case .evacuateHost(let name): .hostEvacuated(HostEvacuated(name: name))
        }
    }
}
