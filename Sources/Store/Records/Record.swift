/// A fact about the fleet, as stored in the payload of a `.record` log entry.
///
/// Every record carries the time it was proposed (`at`, milliseconds since the Unix epoch, set by
/// the proposer: applying a record never reads a clock) and, for client intents, the client's
/// request id, which makes retries idempotent.
public struct Record: Sendable, Equatable {
    public var at: Int64
    public var requestID: String?
    public var body: Body

    public init(at: Int64, requestID: String? = nil, _ body: Body) {
        self.at = at
        self.requestID = requestID
        self.body = body
    }

    /// What happened. The raw values are the record type tags written to the log: never reuse one.
    public enum Body: Sendable, Equatable {
        case hostAdded(HostAdded)
        case hostRemoved(HostRemoved)
        case vmCreated(VMCreated)
        case vmDesiredStateSet(VMDesiredStateSet)
        case vmDeleted(VMDeleted)
        case vmPlaced(VMPlaced)
        case vmUnschedulable(VMUnschedulable)
        case vmStateReported(VMStateReported)
        case hostLabelsSet(HostLabelsSet)
        case historyCompacted(HistoryCompacted)
        case regionIdentified(RegionIdentified)
        case hostStateReported(HostStateReported)
        case hostEvacuated(HostEvacuated)
    }
}

extension Record.Body {
    /// The record's type tag in the log.
    public var tag: UInt64 {
        switch self {
        case .hostAdded: 1
        case .hostRemoved: 2
        case .vmCreated: 3
        case .vmDesiredStateSet: 4
        case .vmDeleted: 5
        case .vmPlaced: 6
        case .vmUnschedulable: 7
        case .vmStateReported: 8
        case .hostLabelsSet: 9
        case .historyCompacted: HistoryCompacted.tag
        case .regionIdentified: RegionIdentified.tag
        case .hostStateReported: HostStateReported.tag
        case .hostEvacuated: HostEvacuated.tag
        }
    }

    /// The record's name in `watch` output and in `intents.kind` (dotted, stable).
    public var kindName: String {
        switch self {
        case .hostAdded: "host.added"
        case .hostRemoved: "host.removed"
        case .vmCreated: "vm.created"
        case .vmDesiredStateSet: "vm.desired_state_set"
        case .vmDeleted: "vm.deleted"
        case .vmPlaced: "vm.placed"
        case .vmUnschedulable: "vm.unschedulable"
        case .vmStateReported: "vm.state_reported"
        case .hostLabelsSet: "host.labels_set"
        case .historyCompacted: "history.compacted"
        case .regionIdentified: "region.identified"
        case .hostStateReported: "host.state_reported"
        case .hostEvacuated: "host.evacuated"
        }
    }

    /// The `intents.kind` of a client intent (`vm.create`, `host.label`, …); nil for records the
    /// system writes itself.
    public var intentKind: String? {
        switch self {
        case .hostAdded: "host.add"
        case .hostRemoved: "host.remove"
        case .vmCreated: "vm.create"
        case .vmDesiredStateSet(let r): r.desiredState == .running ? "vm.start" : "vm.stop"
        case .vmDeleted: "vm.delete"
        case .hostLabelsSet: "host.label"
        case .hostEvacuated: "host.evacuate"
        case .vmPlaced, .vmUnschedulable, .vmStateReported, .historyCompacted, .regionIdentified,
            .hostStateReported:
            nil
        }
    }

    /// The name of the host or VM the record is about (empty for `history.compacted` and
    /// `region.identified`).
    public var subject: String {
        switch self {
        case .hostAdded(let r): r.name
        case .hostRemoved(let r): r.name
        case .vmCreated(let r): r.name
        case .vmDesiredStateSet(let r): r.name
        case .vmDeleted(let r): r.name
        case .vmPlaced(let r): r.vm
        case .vmUnschedulable(let r): r.vm
        case .vmStateReported(let r): r.vm
        case .hostLabelsSet(let r): r.name
        case .hostStateReported(let r): r.name
        case .hostEvacuated(let r): r.name
        case .historyCompacted, .regionIdentified: ""
        }
    }

    /// The body's fields as JSON.
    public var json: JSONValue {
        switch self {
        case .hostAdded(let r): r.json
        case .hostRemoved(let r): r.json
        case .vmCreated(let r): r.json
        case .vmDesiredStateSet(let r): r.json
        case .vmDeleted(let r): r.json
        case .vmPlaced(let r): r.json
        case .vmUnschedulable(let r): r.json
        case .vmStateReported(let r): r.json
        case .hostLabelsSet(let r): r.json
        case .historyCompacted(let r): r.json
        case .regionIdentified(let r): r.json
        case .hostStateReported(let r): r.json
        case .hostEvacuated(let r): r.json
        }
    }
}
