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
