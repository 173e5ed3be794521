/// A host joined the fleet with this capacity. Fields: 10 name, 11 region, 12 cpus,
/// 13 memory_bytes, 14 labels.
public struct HostAdded: Sendable, Equatable {
    public var name: String
    public var region: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var labels: [String: String]

    public init(name: String, region: String, cpus: Int, memoryBytes: Int64, labels: [String: String] = [:]) {
        self.name = name
        self.region = region
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.labels = labels
    }

    init(_ f: FieldReader) throws {
        name = try f.requiredString(10, "name")
        region = try f.requiredString(11, "region")
        cpus = try f.requiredInt(12, "cpus")
        memoryBytes = try f.requiredInt64(13, "memory_bytes")
        labels = try f.map(14)
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, name)
        w.write(11, region)
        w.write(12, cpus)
        w.write(13, memoryBytes)
        w.write(14, labels)
    }

    var json: JSONValue {
        .object([
            ("name", .string(name)), ("region", .string(region)), ("cpus", .int(Int64(cpus))),
            ("memory_bytes", .int(memoryBytes)), ("labels", .map(labels)),
        ])
    }
}

/// A host left the fleet. Fields: 10 name.
public struct HostRemoved: Sendable, Equatable {
    public var name: String

    public init(name: String) { self.name = name }

    init(_ f: FieldReader) throws { name = try f.requiredString(10, "name") }

    func encode(into w: inout FieldWriter) { w.write(10, name) }

    var json: JSONValue { .object([("name", .string(name))]) }
}

/// A host's labels were replaced. Fields: 10 name, 11 labels.
public struct HostLabelsSet: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]

    public init(name: String, labels: [String: String]) {
        self.name = name
        self.labels = labels
    }

    init(_ f: FieldReader) throws {
        name = try f.requiredString(10, "name")
        labels = try f.map(11)
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, name)
        w.write(11, labels)
    }

    var json: JSONValue { .object([("name", .string(name)), ("labels", .map(labels))]) }
}

/// What the region knows of a host's health: `ready`, or `not_ready` with why. The leader reports
/// a host `not_ready` when the member whose host agent runs it stops answering, and `ready` again
/// when it answers; a host agent reports its own host `ready` as it starts, naming its member.
/// Placement takes only ready hosts. Fields: 10 name, 11 state, 12 reason, 13 agent (the member
/// whose host agent runs the host; empty: unchanged).
public struct HostStateReported: Sendable, Equatable {
    /// The record's type tag in the log.
    static let tag: UInt64 = 12
    /// The states a host can be reported in.
    public static let states: Set<String> = ["ready", "not_ready"]
    public var name: String
    public var state: String
    public var reason: String
    public var agent: String

    public init(name: String, state: String, reason: String = "", agent: String = "") {
        self.name = name
        self.state = state
        self.reason = reason
        self.agent = agent
    }

    init(_ f: FieldReader) throws {
        name = try f.requiredString(10, "name")
        state = try f.requiredString(11, "state")
        reason = f.string(12) ?? ""
        agent = f.string(13) ?? ""
    }

    func encode(into w: inout FieldWriter) {
        w.write(10, name)
        w.write(11, state)
        if !reason.isEmpty { w.write(12, reason) }
        if !agent.isEmpty { w.write(13, agent) }
    }

    var json: JSONValue {
        var fields: [(String, JSONValue)] = [("name", .string(name)), ("state", .string(state))]
        if !reason.isEmpty { fields.append(("reason", .string(reason))) }
        if !agent.isEmpty { fields.append(("agent", .string(agent))) }
        return .object(fields)
    }
}

/// A host given up for its VMs (`dwcp host evacuate`): the VMs placed on it wait to be placed anew,
/// elsewhere, and start there from their images; its host agent, back, ends the ones it ran. Refused
/// for a host that is ready (its VMs run there). Fields: 10 name.
public struct HostEvacuated: Sendable, Equatable {
    /// The record's type tag in the log.
    static let tag: UInt64 = 13
    public var name: String

    public init(name: String) { self.name = name }

    init(_ f: FieldReader) throws { name = try f.requiredString(10, "name") }

    func encode(into w: inout FieldWriter) { w.write(10, name) }

    var json: JSONValue { .object([("name", .string(name))]) }
}
