/// What a VM should be doing.
public enum VMDesiredState: String, Sendable, CaseIterable {
    case running
    case stopped
}

/// A VM was requested. Fields: 10 name, 11 region, 12 cpus, 13 memory_bytes, 14 image,
/// 15 labels, 16 desired_state (absent: `running`).
public struct VMCreated: Sendable, Equatable {
    public var name: String
    public var region: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var image: String
    public var labels: [String: String]
    public var desiredState: VMDesiredState

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
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, name)
        w.write(11, region)
        w.write(12, cpus)
        w.write(13, memoryBytes)
        w.write(14, image)
        w.write(15, labels)
        w.write(16, desiredState.rawValue)
    }

    var json: JSONValue {
        .object([
            ("name", .string(name)), ("region", .string(region)), ("cpus", .int(Int64(cpus))),
            ("memory_bytes", .int(memoryBytes)), ("image", .string(image)), ("labels", .map(labels)),
            ("desired_state", .string(desiredState.rawValue)),
        ])
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

    public init(vm: String, host: String, explanation: String) {
        self.vm = vm
        self.host = host
        self.explanation = explanation
    }

    init(_ f: FieldReader) throws {
        vm = try f.requiredString(10, "vm")
        host = try f.requiredString(11, "host")
        explanation = f.string(12) ?? "{}"
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, vm)
        w.write(11, host)
        w.write(12, explanation)
    }

    var json: JSONValue {
        .object([
            ("vm", .string(vm)), ("host", .string(host)),
            ("explanation", (try? JSONValue.parse(explanation)) ?? .string(explanation)),
        ])
    }
}

/// The scheduler found no host for a VM. Fields: 10 vm, 11 reason.
public struct VMUnschedulable: Sendable, Equatable {
    public var vm: String
    public var reason: String

    public init(vm: String, reason: String) {
        self.vm = vm
        self.reason = reason
    }

    init(_ f: FieldReader) throws {
        vm = try f.requiredString(10, "vm")
        reason = f.string(11) ?? ""
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, vm)
        w.write(11, reason)
    }

    var json: JSONValue { .object([("vm", .string(vm)), ("reason", .string(reason))]) }
}

/// A host agent reported what a VM is actually doing. Fields: 10 vm, 11 host, 12 state, 13 reason.
public struct VMStateReported: Sendable, Equatable {
    public var vm: String
    public var host: String
    public var state: String
    public var reason: String

    public init(vm: String, host: String, state: String, reason: String = "") {
        self.vm = vm
        self.host = host
        self.state = state
        self.reason = reason
    }

    init(_ f: FieldReader) throws {
        vm = try f.requiredString(10, "vm")
        host = try f.requiredString(11, "host")
        state = try f.requiredString(12, "state")
        reason = f.string(13) ?? ""
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, vm)
        w.write(11, host)
        w.write(12, state)
        w.write(13, reason)
    }

    var json: JSONValue {
        .object([("vm", .string(vm)), ("host", .string(host)), ("state", .string(state)), ("reason", .string(reason))])
    }
}
