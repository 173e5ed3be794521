/// The hosts of one placement round, built once and updated as VMs are placed. What the scan reads
/// for every host sits in one small value per host (``Row``), so evaluating a host is a few loads
/// from one contiguous array: placing one VM scans thousands of hosts in microseconds.
struct HostTable {
    /// What the scan needs of one host.
    struct Row {
        var regionID: Int32
        var ready: Bool
        var freeCPUs: Int
        var freeMemory: Int64
        var vmCount: Int
        /// 1 / capacity, so scoring multiplies instead of dividing.
        var inverseCPUs: Double
        var inverseMemory: Double
        /// The host's capacity as a share of the largest host's (mean of CPU and memory shares).
        var sizeShare: Double
    }

    /// In name order, so a lower position wins a tie (the documented tie-break) without comparing
    /// names in the scan. `hosts` keeps labels and groups for the constraint checks.
    var hosts: [HostCapacity]
    var rows: [Row]
    var regions: [String: Int32]
    var positions: [String: Int]

    init(_ hosts: [HostCapacity]) {
        let hosts = hosts.sorted { $0.name < $1.name }
        self.hosts = hosts
        let largestCPUs = Double(max(hosts.map(\.cpus).max() ?? 1, 1))
        let largestMemory = Double(max(hosts.map(\.memoryBytes).max() ?? 1, 1))
        var regions: [String: Int32] = [:]
        rows = hosts.map { host in
            let regionID = regions[host.region] ?? Int32(regions.count)
            regions[host.region] = regionID
            return Row(
                regionID: regionID, ready: host.state == "ready", freeCPUs: host.freeCPUs,
                freeMemory: host.freeMemoryBytes, vmCount: host.vmCount, inverseCPUs: 1 / Double(max(host.cpus, 1)),
                inverseMemory: 1 / Double(max(host.memoryBytes, 1)),
                sizeShare: (Double(host.cpus) / largestCPUs + Double(host.memoryBytes) / largestMemory) / 2)
        }
        self.regions = regions
        positions = Dictionary(uniqueKeysWithValues: hosts.enumerated().map { ($1.name, $0) })
    }

    /// Takes the host at `i` out of placement, as a host that is not `ready` is.
    mutating func drain(at i: Int) {
        hosts[i].state = "draining"
        rows[i].ready = false
    }

    mutating func take(_ request: PlacementRequest, at i: Int) {
        hosts[i].take(request)
        rows[i].freeCPUs -= request.cpus
        rows[i].freeMemory -= request.memoryBytes
        rows[i].vmCount += 1
    }
}
