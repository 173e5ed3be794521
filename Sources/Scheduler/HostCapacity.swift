/// A host as the scheduler sees it: where it is, whether it takes VMs, what it has, what is used,
/// its labels, and how many VMs of each group it already runs.
public struct HostCapacity: Sendable, Equatable {
    public var name: String
    public var region: String
    public var state: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var cpusUsed: Int
    public var memoryUsedBytes: Int64
    public var labels: [String: String]
    /// VM count per group name among the VMs placed on this host.
    public var groups: [String: Int]
    /// How many VMs run here (a host with none is not "in use").
    public var vmCount: Int

    public init(
        name: String, region: String, state: String = "ready", cpus: Int, memoryBytes: Int64, cpusUsed: Int = 0,
        memoryUsedBytes: Int64 = 0, labels: [String: String] = [:], groups: [String: Int] = [:], vmCount: Int = 0
    ) {
        self.name = name
        self.region = region
        self.state = state
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.cpusUsed = cpusUsed
        self.memoryUsedBytes = memoryUsedBytes
        self.labels = labels
        self.groups = groups
        self.vmCount = vmCount
    }

    public var freeCPUs: Int { cpus - cpusUsed }
    public var freeMemoryBytes: Int64 { memoryBytes - memoryUsedBytes }

    /// Records that `request` now runs here.
    public mutating func take(_ request: PlacementRequest) {
        cpusUsed += request.cpus
        memoryUsedBytes += request.memoryBytes
        vmCount += 1
        if let group = request.group { groups[group, default: 0] += 1 }
    }

    /// Records that `request` no longer runs here.
    public mutating func release(_ request: PlacementRequest) {
        cpusUsed -= request.cpus
        memoryUsedBytes -= request.memoryBytes
        vmCount -= 1
        if let group = request.group {
            groups[group, default: 0] -= 1
            if groups[group] == 0 { groups[group] = nil }
        }
    }
}

/// How strictly VMs of one group must avoid sharing a host.
public enum AntiAffinity: String, Sendable, CaseIterable {
    /// Never on the same host: a host with a VM of the group is filtered out.
    case hard
    /// Preferably not: such a host is scored down, but may be chosen.
    case soft
}

/// Whether placement packs VMs onto few hosts or spreads them out.
public enum PlacementPolicy: String, Sendable, CaseIterable {
    /// Fewest hosts in use, least capacity stranded (the default).
    case binpack
    /// Most free capacity first.
    case spread
}

/// A VM that needs a host, with its constraints.
public struct PlacementRequest: Sendable, Equatable {
    public var vm: String
    public var region: String
    public var cpus: Int
    public var memoryBytes: Int64
    /// Labels a host must carry, with these values.
    public var requiredLabels: [String: String]
    /// The VM's group (for anti-affinity and for others' affinity).
    public var group: String?
    public var antiAffinity: AntiAffinity?
    /// A group whose VMs this VM must share a host with (if that group has any VM placed).
    public var affinityGroup: String?
    public var policy: PlacementPolicy

    public init(
        vm: String, region: String, cpus: Int, memoryBytes: Int64, requiredLabels: [String: String] = [:],
        group: String? = nil, antiAffinity: AntiAffinity? = nil, affinityGroup: String? = nil,
        policy: PlacementPolicy = .binpack
    ) {
        self.vm = vm
        self.region = region
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.requiredLabels = requiredLabels
        self.group = group
        self.antiAffinity = antiAffinity
        self.affinityGroup = affinityGroup
        self.policy = policy
    }
}
