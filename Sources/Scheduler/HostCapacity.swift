/// A host as the scheduler sees it: where it is, whether it takes VMs, what it has and what is used.
public struct HostCapacity: Sendable, Equatable {
    public var name: String
    public var region: String
    public var state: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var cpusUsed: Int
    public var memoryUsedBytes: Int64

    public init(
        name: String, region: String, state: String = "ready", cpus: Int, memoryBytes: Int64, cpusUsed: Int = 0,
        memoryUsedBytes: Int64 = 0
    ) {
        self.name = name
        self.region = region
        self.state = state
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.cpusUsed = cpusUsed
        self.memoryUsedBytes = memoryUsedBytes
    }

    public var freeCPUs: Int { cpus - cpusUsed }
    public var freeMemoryBytes: Int64 { memoryBytes - memoryUsedBytes }
}

/// A VM that needs a host.
public struct PlacementRequest: Sendable, Equatable {
    public var vm: String
    public var region: String
    public var cpus: Int
    public var memoryBytes: Int64

    public init(vm: String, region: String, cpus: Int, memoryBytes: Int64) {
        self.vm = vm
        self.region = region
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }
}
