/// The hosts of one placement round in columns, built once and updated as VMs are placed, so
/// evaluating a host is a few array reads: placing one VM scans thousands of hosts in microseconds.
struct HostTable {
    var hosts: [HostCapacity]
    var regionIDs: [Int32]
    var ready: [Bool]
    /// 1 / capacity, so scoring multiplies instead of dividing.
    var inverseCPUs: [Double]
    var inverseMemory: [Double]
    /// The host's capacity as a share of the largest host's (mean of CPU and memory shares).
    var sizeShare: [Double]
    var freeCPUs: [Int]
    var freeMemory: [Int64]
    var vmCount: [Int]
    var regions: [String: Int32]
    var positions: [String: Int]

    /// Hosts are kept in name order, so a lower position wins a tie (the documented tie-break)
    /// without comparing names in the scan.
    init(_ hosts: [HostCapacity]) {
        let hosts = hosts.sorted { $0.name < $1.name }
        self.hosts = hosts
        var regions: [String: Int32] = [:]
        regionIDs = hosts.map { host in
            if let id = regions[host.region] { return id }
            let id = Int32(regions.count)
            regions[host.region] = id
            return id
        }
        self.regions = regions
        ready = hosts.map { $0.state == "ready" }
        inverseCPUs = hosts.map { 1 / Double(max($0.cpus, 1)) }
        inverseMemory = hosts.map { 1 / Double(max($0.memoryBytes, 1)) }
        let largestCPUs = Double(max(hosts.map(\.cpus).max() ?? 1, 1))
        let largestMemory = Double(max(hosts.map(\.memoryBytes).max() ?? 1, 1))
        sizeShare = hosts.map { (Double($0.cpus) / largestCPUs + Double($0.memoryBytes) / largestMemory) / 2 }
        freeCPUs = hosts.map(\.freeCPUs)
        freeMemory = hosts.map(\.freeMemoryBytes)
        vmCount = hosts.map(\.vmCount)
        var positions: [String: Int] = [:]
        for (i, host) in hosts.enumerated() { positions[host.name] = i }
        self.positions = positions
    }

    mutating func take(_ request: PlacementRequest, at i: Int) {
        hosts[i].take(request)
        freeCPUs[i] -= request.cpus
        freeMemory[i] -= request.memoryBytes
        vmCount[i] += 1
    }
}
