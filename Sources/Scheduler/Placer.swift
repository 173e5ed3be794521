/// Chooses a host for a VM: pure and deterministic (the same hosts and request always give the
/// same answer, whatever node computes it).
///
/// Policy "best-fit": among ready hosts of the VM's region with enough free CPUs and memory,
/// take the one that would be left with the least free capacity, summing the CPU and memory
/// fractions left over; ties go to the host whose name sorts first.
public struct Placer: Sendable {
    /// How many of the best candidates an explanation lists.
    public var candidatesShown: Int

    public init(candidatesShown: Int = 3) {
        self.candidatesShown = candidatesShown
    }

    public func place(_ request: PlacementRequest, on hosts: [HostCapacity]) -> PlacementDecision {
        var wrongRegion = 0
        var notReady = 0
        var lackCPUs = 0
        var lackMemory = 0
        var candidates: [PlacementDecision.Candidate] = []
        for host in hosts {
            guard host.region == request.region else {
                wrongRegion += 1
                continue
            }
            guard host.state == "ready" else {
                notReady += 1
                continue
            }
            let cpuShort = host.freeCPUs < request.cpus
            let memoryShort = host.freeMemoryBytes < request.memoryBytes
            if cpuShort { lackCPUs += 1 }
            if memoryShort { lackMemory += 1 }
            if cpuShort || memoryShort { continue }
            let cpusAfter = host.freeCPUs - request.cpus
            let memoryAfter = host.freeMemoryBytes - request.memoryBytes
            let score =
                Double(cpusAfter) / Double(max(host.cpus, 1)) + Double(memoryAfter) / Double(max(host.memoryBytes, 1))
            candidates.append(
                .init(host: host.name, score: score, freeCPUsAfter: cpusAfter, freeMemoryBytesAfter: memoryAfter))
        }
        candidates.sort { $0.score != $1.score ? $0.score < $1.score : $0.host < $1.host }
        let explanation = PlacementDecision.Explanation(
            policy: "best-fit",
            hostsEvaluated: hosts.count,
            filteredOut: [
                ("region", wrongRegion), ("not_ready", notReady), ("cpus", lackCPUs), ("memory", lackMemory),
            ],
            candidates: Array(candidates.prefix(candidatesShown)))
        guard let best = candidates.first else {
            let inRegion = hosts.count - wrongRegion
            var reason: String
            if inRegion == 0 {
                reason = "no host in \(request.region)"
            } else {
                reason =
                    "no host in \(request.region) with \(request.cpus) free CPUs and \(formatBytes(request.memoryBytes)) free memory"
                var why: [String] = []
                if notReady > 0 { why.append("\(notReady) not ready") }
                if lackCPUs > 0 { why.append("\(lackCPUs) full on CPUs") }
                if lackMemory > 0 { why.append("\(lackMemory) full on memory") }
                if !why.isEmpty {
                    reason += "; of \(inRegion) host\(inRegion == 1 ? "" : "s"): " + why.joined(separator: ", ")
                }
            }
            return PlacementDecision(host: nil, reason: reason, explanation: explanation)
        }
        return PlacementDecision(host: best.host, reason: "", explanation: explanation)
    }

    /// Places several VMs in order, each seeing the capacity the previous ones took.
    public func place(_ requests: [PlacementRequest], on hosts: [HostCapacity]) -> [PlacementDecision] {
        var hosts = hosts
        var positions: [String: Int] = [:]
        for (i, host) in hosts.enumerated() { positions[host.name] = i }
        return requests.map { request in
            let decision = place(request, on: hosts)
            if let chosen = decision.host, let i = positions[chosen] {
                hosts[i].cpusUsed += request.cpus
                hosts[i].memoryUsedBytes += request.memoryBytes
            }
            return decision
        }
    }
}

/// Bytes in the largest binary unit that keeps the number readable ("2GiB", "1.5GiB", "512MiB").
public func formatBytes(_ bytes: Int64) -> String {
    let units: [(String, Int64)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
    for (unit, size) in units where bytes >= size {
        let value = Double(bytes) / Double(size)
        if value == value.rounded() { return "\(Int64(value))\(unit)" }
        return "\((value * 100).rounded() / 100)\(unit)"
    }
    return "\(bytes)B"
}
