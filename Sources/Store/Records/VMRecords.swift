/// What a VM should be doing.
public enum VMDesiredState: String, Sendable, CaseIterable {
    case running
    case stopped
}

/// A VM was requested. Fields: 10 name, 11 region, 12 cpus, 13 memory_bytes, 14 image,
/// 15 labels, 16 desired_state (absent: `running`); placement constraints (absent: none):
/// 17 required_labels, 18 group, 19 anti_affinity (`hard`/`soft`), 20 affinity_group,
/// 21 placement_policy (`binpack`/`spread`), 22 check_index (apply only if nothing placement
/// depends on changed after this index).
public struct VMCreated: Sendable, Equatable {
    public var name: String
    public var region: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var image: String
    public var labels: [String: String]
    public var desiredState: VMDesiredState
    public var requiredLabels: [String: String] = [:]
    public var group: String?
    public var antiAffinity: String?
    public var affinityGroup: String?
    public var placementPolicy: String?
    public var checkIndex: UInt64?

    public init(
        name: String, region: String, cpus: Int, memoryBytes: Int64, image: String, labels: [String: String] = [:],
        desiredState: VMDesiredState = .running
    ) {
        self.name = name
        self.region = region
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.image = image
        self.labels = labels
        self.desiredState = desiredState
    }

    init(_ f: FieldReader) throws {
        name = try f.requiredString(10, "name")
        region = try f.requiredString(11, "region")
        cpus = try f.requiredInt(12, "cpus")
        memoryBytes = try f.requiredInt64(13, "memory_bytes")
        image = try f.requiredString(14, "image")
        labels = try f.map(15)
        desiredState = f.string(16).flatMap(VMDesiredState.init(rawValue:)) ?? .running
        requiredLabels = try f.map(17)
        group = f.string(18)
        antiAffinity = f.string(19)
        affinityGroup = f.string(20)
        placementPolicy = f.string(21)
        checkIndex = f.uint64(22)
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, name)
        w.write(11, region)
        w.write(12, cpus)
        w.write(13, memoryBytes)
        w.write(14, image)
        w.write(15, labels)
        w.write(16, desiredState.rawValue)
        w.write(17, requiredLabels)
        if let group { w.write(18, group) }
        if let antiAffinity { w.write(19, antiAffinity) }
        if let affinityGroup { w.write(20, affinityGroup) }
        if let placementPolicy { w.write(21, placementPolicy) }
        if let checkIndex { w.write(22, checkIndex) }
    }

    var json: JSONValue {
        .object(
            [
                ("name", .string(name)), ("region", .string(region)), ("cpus", .int(Int64(cpus))),
                ("memory_bytes", .int(memoryBytes)), ("image", .string(image)), ("labels", .map(labels)),
                ("desired_state", .string(desiredState.rawValue)),
            ] + constraintsJSON)
    }

    var constraintsJSON: [(String, JSONValue)] {
        var members: [(String, JSONValue)] = []
        if !requiredLabels.isEmpty { members.append(("required_labels", .map(requiredLabels))) }
        if let group { members.append(("group", .string(group))) }
        if let antiAffinity { members.append(("anti_affinity", .string(antiAffinity))) }
        if let affinityGroup { members.append(("affinity_group", .string(affinityGroup))) }
        if let placementPolicy { members.append(("placement_policy", .string(placementPolicy))) }
        if let checkIndex { members.append(("check_index", .int(Int64(clamping: checkIndex)))) }
        return members
    }
}

/// A user asked for a VM to run or stop. Fields: 10 name, 11 desired_state.
public struct VMDesiredStateSet: Sendable, Equatable {
    public var name: String
    public var desiredState: VMDesiredState

    public init(name: String, desiredState: VMDesiredState) {
        self.name = name
        self.desiredState = desiredState
    }

    init(_ f: FieldReader) throws {
        name = try f.requiredString(10, "name")
        let raw = try f.requiredString(11, "desired_state")
        guard let state = VMDesiredState(rawValue: raw) else {
            throw StoreError(.malformedRecord, "\(f.context): unknown desired state '\(raw)'")
        }
        desiredState = state
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, name)
        w.write(11, desiredState.rawValue)
    }

    var json: JSONValue { .object([("name", .string(name)), ("desired_state", .string(desiredState.rawValue))]) }
}

/// A VM was deleted; its capacity returns to its host. Fields: 10 name.
public struct VMDeleted: Sendable, Equatable {
    public var name: String

    public init(name: String) { self.name = name }

    init(_ f: FieldReader) throws { name = try f.requiredString(10, "name") }

    func encode(into w: inout FieldWriter) { w.write(10, name) }

    var json: JSONValue { .object([("name", .string(name))]) }
}

/// The scheduler placed a VM on a host. Fields: 10 vm, 11 host, 12 explanation (JSON text).
public struct VMPlaced: Sendable, Equatable {
    public var vm: String
    public var host: String
    public var explanation: String
    /// Which VM of that name the placement was decided for: the index of its `vm.created`
    /// record (the scheduler knows it), or how many entries before this one that record is
    /// (a planned batch, whose creations precede its placements in the same proposal). A placement
    /// with either is checked when it applies against the VM's constraints too (required labels,
    /// hard anti-affinity), not only the host's room; records without (before this field) apply
    /// as they always did, so a rebuild from an old log gives the views it gave.
    public var createdIndex: UInt64?
    public var createdBefore: UInt64?

    public init(
        vm: String, host: String, explanation: String, createdIndex: UInt64? = nil, createdBefore: UInt64? = nil
    ) {
        self.vm = vm
        self.host = host
        self.explanation = explanation
        self.createdIndex = createdIndex
        self.createdBefore = createdBefore
    }

    init(_ f: FieldReader) throws {
        vm = try f.requiredString(10, "vm")
        host = try f.requiredString(11, "host")
        explanation = f.string(12) ?? "{}"
        createdIndex = f.uint64(13)
        createdBefore = f.uint64(14)
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, vm)
        w.write(11, host)
        w.write(12, explanation)
        if let createdIndex { w.write(13, createdIndex) }
        if let createdBefore { w.write(14, createdBefore) }
    }

    var json: JSONValue {
        .object([
            ("vm", .string(vm)), ("host", .string(host)),
            ("explanation", (try? JSONValue.parse(explanation)) ?? .string(explanation)),
        ])
    }
}

/// The scheduler found no host for a VM. Fields: 10 vm, 11 reason, 12 explanation (JSON text).
public struct VMUnschedulable: Sendable, Equatable {
    public var vm: String
    public var reason: String
    public var explanation: String
    /// Which VM of that name the decision was for, as ``VMPlaced`` names it: the index of its
    /// `vm.created` record, or how many entries before this one that record is. A record with
    /// either does not apply to another VM of the same name; records without apply as before.
    public var createdIndex: UInt64?
    public var createdBefore: UInt64?

    public init(
        vm: String, reason: String, explanation: String = "{}", createdIndex: UInt64? = nil,
        createdBefore: UInt64? = nil
    ) {
        self.vm = vm
        self.reason = reason
        self.explanation = explanation
        self.createdIndex = createdIndex
        self.createdBefore = createdBefore
    }

    init(_ f: FieldReader) throws {
        vm = try f.requiredString(10, "vm")
        reason = f.string(11) ?? ""
        explanation = f.string(12) ?? "{}"
        createdIndex = f.uint64(13)
        createdBefore = f.uint64(14)
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, vm)
        w.write(11, reason)
        w.write(12, explanation)
        if let createdIndex { w.write(13, createdIndex) }
        if let createdBefore { w.write(14, createdBefore) }
    }

    var json: JSONValue { .object([("vm", .string(vm)), ("reason", .string(reason))]) }
}

/// A host agent reported what a VM is actually doing. Fields: 10 vm, 11 host, 12 state, 13 reason;
/// on the `running` report of a start: 14 start_path (cold | pool | restore), 15 first_entry_us,
/// 16 boot_us (measured from the record that asked for the start being applied on the host).
public struct VMStateReported: Sendable, Equatable {
    public var vm: String
    public var host: String
    public var state: String
    public var reason: String
    public var start: VMStartMeasurement?
    /// Which VM of that name the report is about: the index of its `vm.created` record. A report
    /// about another (a VM deleted and created again under its name since) is refused when it
    /// applies; reports without it (before this field) apply as they did.
    public var createdIndex: UInt64?

    public init(
        vm: String, host: String, state: String, reason: String = "", start: VMStartMeasurement? = nil,
        createdIndex: UInt64? = nil
    ) {
        self.vm = vm
        self.host = host
        self.state = state
        self.reason = reason
        self.start = start
        self.createdIndex = createdIndex
    }

    init(_ f: FieldReader) throws {
        vm = try f.requiredString(10, "vm")
        host = try f.requiredString(11, "host")
        state = try f.requiredString(12, "state")
        reason = f.string(13) ?? ""
        if let path = f.string(14) {
            start = VMStartMeasurement(
                path: path, firstEntryMicroseconds: f.int64(15) ?? 0, bootMicroseconds: f.int64(16) ?? 0)
        }
        createdIndex = f.uint64(17)
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, vm)
        w.write(11, host)
        w.write(12, state)
        w.write(13, reason)
        if let start {
            w.write(14, start.path)
            w.write(15, start.firstEntryMicroseconds)
            w.write(16, start.bootMicroseconds)
        }
        if let createdIndex { w.write(17, createdIndex) }
    }

    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("vm", .string(vm)), ("host", .string(host)), ("state", .string(state)), ("reason", .string(reason)),
        ]
        if let start {
            members += [
                ("start_path", .string(start.path)), ("first_entry_us", .int(start.firstEntryMicroseconds)),
                ("boot_us", .int(start.bootMicroseconds)),
            ]
        }
        return .object(members)
    }
}

/// How a VM start went: the path it took (`cold`, `pool`, `restore`) and how long after the record
/// that asked for it was applied the guest was first entered and wrote its boot timer.
public struct VMStartMeasurement: Sendable, Equatable {
    public var path: String
    public var firstEntryMicroseconds: Int64
    public var bootMicroseconds: Int64

    public init(path: String, firstEntryMicroseconds: Int64, bootMicroseconds: Int64) {
        self.path = path
        self.firstEntryMicroseconds = firstEntryMicroseconds
        self.bootMicroseconds = bootMicroseconds
    }
}
