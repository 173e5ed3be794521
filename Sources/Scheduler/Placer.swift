/// Chooses hosts for VMs: pure and deterministic (the same hosts and requests always give the same
/// answer, whatever node computes it).
///
/// Filters, in order: region, required labels, host state (`ready` only), free CPUs, free memory,
/// hard anti-affinity (no VM of the same group on the host), affinity (a host running a VM of the
/// affinity group, when that group has any VM placed).
///
/// Scores (lower wins; ties go to the host whose name sorts first):
/// - `binpack`, on a host in use: `left_over` (the CPU and memory shares left free, averaged:
///   fuller is better) + `stranded` (how unevenly the two are left: capacity of one kind left
///   without the other is stranded);
/// - `binpack`, on an empty host: `new_host` (2, more than any fit on a host in use: fewest hosts)
///   + `smaller_than_largest` (open the largest hosts first) + `stranded`;
/// - `spread`: `free_after` (minus the shares left free, averaged: emptier is better);
/// - both: `soft_anti_affinity` (4 per VM of the same group already on the host).
public struct Placer: Sendable {
    /// How many of the best candidates an explanation lists.
    public var candidatesShown: Int

    public init(candidatesShown: Int = 3) {
        self.candidatesShown = candidatesShown
    }

    public func place(_ request: PlacementRequest, on hosts: [HostCapacity]) -> PlacementDecision {
        let table = HostTable(hosts)
        return place(request, in: table)
    }

    /// Places several VMs, each seeing the capacity and groups the previous ones took. The order is
    /// the caller's: ``placeBatch(_:on:)`` sorts for packing first.
    public func place(_ requests: [PlacementRequest], on hosts: [HostCapacity]) -> [PlacementDecision] {
        place(requests, startingFrom: HostTable(hosts))
    }

    /// ``place(_:on:)`` from a table built already (a batch tries many orders on one fleet).
    func place(_ requests: [PlacementRequest], startingFrom table: HostTable) -> [PlacementDecision] {
        var table = table
        return requests.map { request in
            let decision = place(request, in: table)
            if let chosen = decision.host, let i = table.positions[chosen] { table.take(request, at: i) }
            return decision
        }
    }

    func place(_ request: PlacementRequest, in table: HostTable) -> PlacementDecision {
        var counts = [Int](repeating: 0, count: Filter.allCases.count)
        let shown = max(candidatesShown, 1)
        var best: [(score: Double, position: Int)] = []
        best.reserveCapacity(shown + 1)
        let region = table.regions[request.region] ?? -1
        let needsSlowChecks =
            !request.requiredLabels.isEmpty || (request.antiAffinity != nil && request.group != nil)
            || request.affinityGroup != nil
        // Affinity binds only where the group runs in the VM's own region: a group elsewhere
        // (another region's hosts) would otherwise rule out every host the VM may have.
        let affinityPresent =
            request.affinityGroup.map { group in
                table.hosts.contains { $0.region == request.region && ($0.groups[group] ?? 0) > 0 }
            } ?? false
        let cpusWanted = request.cpus
        let memoryWanted = request.memoryBytes
        let binpack = request.policy == .binpack
        let softGroup = request.antiAffinity == .soft ? request.group : nil
        table.rows.withUnsafeBufferPointer { rows in
            var worstKept = Double.infinity
            for i in 0..<rows.count {
                let row = rows[i]
                // Cheap fields first; the full filter only for requests that need it.
                if row.regionID != region {
                    counts[Filter.region.rawValue] += 1
                    continue
                }
                if needsSlowChecks {
                    if let filter = firstFailingFilter(request, table.hosts[i], affinityPresent: affinityPresent) {
                        counts[filter.rawValue] += 1
                        continue
                    }
                } else if !row.ready {
                    counts[Filter.notReady.rawValue] += 1
                    continue
                } else if row.freeCPUs < cpusWanted {
                    counts[Filter.cpus.rawValue] += 1
                    continue
                } else if row.freeMemory < memoryWanted {
                    counts[Filter.memory.rawValue] += 1
                    continue
                }
                let cpuLeft = Double(row.freeCPUs - cpusWanted) * row.inverseCPUs
                let memoryLeft = Double(row.freeMemory - memoryWanted) * row.inverseMemory
                let meanLeft = (cpuLeft + memoryLeft) * 0.5
                // A select, not a branch: empty and used hosts interleave unpredictably.
                let base = row.vmCount == 0 ? Self.newHostWeight + 1 - row.sizeShare : meanLeft
                var score = binpack ? base + abs(cpuLeft - memoryLeft) : -meanLeft
                if let group = softGroup {
                    score += Self.softAntiAffinityWeight * Double(table.hosts[i].groups[group] ?? 0)
                }
                // Positions are in name order: an equal score never beats an earlier host.
                if score >= worstKept { continue }
                var k = best.count
                while k > 0 && best[k - 1].score > score { k -= 1 }
                best.insert((score, i), at: k)
                if best.count > shown { best.removeLast() }
                if best.count == shown { worstKept = best[shown - 1].score }
            }
        }
        let candidates = best.prefix(candidatesShown).map { entry in
            let host = table.hosts[entry.position]
            return PlacementDecision.Candidate(
                host: host.name, score: entry.score,
                breakdown: Self.score(request, host, sizeShare: table.rows[entry.position].sizeShare),
                freeCPUsAfter: host.freeCPUs - request.cpus,
                freeMemoryBytesAfter: host.freeMemoryBytes - request.memoryBytes)
        }
        let explanation = PlacementDecision.Explanation(
            policy: request.policy.rawValue, hostsEvaluated: table.hosts.count,
            filteredOut: Filter.allCases.map { .init(filter: $0.name, count: counts[$0.rawValue]) },
            candidates: Array(candidates))
        guard let winner = best.first else {
            // Of the hosts full on CPUs or memory, or not ready, those too small for the VM even
            // when empty, on either: a VM larger than every host waits for a larger one, not for
            // room. (A host full on CPUs, or not ready, whose memory could never hold the VM is too
            // small: its reason must not change as its CPUs or its readiness come and go, each
            // change a record for every VM that waits.) The failure path only, so the loop above
            // stays lean.
            var fullOrSmall = counts
            var tooSmall = (cpus: 0, memory: 0)
            for host in table.hosts where host.region == request.region {
                guard let filter = firstFailingFilter(request, host, affinityPresent: affinityPresent),
                    filter == .cpus || filter == .memory || filter == .notReady
                else { continue }
                if host.cpus < request.cpus {
                    tooSmall.cpus += 1
                } else if host.memoryBytes < request.memoryBytes {
                    tooSmall.memory += 1
                } else {
                    continue
                }
                fullOrSmall[filter.rawValue] -= 1
            }
            return PlacementDecision(
                host: nil,
                reason: Self.reason(request, full: fullOrSmall, tooSmall: tooSmall, hosts: table.hosts.count),
                explanation: explanation)
        }
        return PlacementDecision(host: table.hosts[winner.position].name, reason: "", explanation: explanation)
    }

    /// Places a batch of VMs (VMs that wait at the same time, or `vm create --count N`) to use as
    /// few hosts as it can: it tries several largest-first orders, keeps the one that places the
    /// most VMs on the fewest new hosts, then tries to empty each host the batch opened by moving
    /// its batch VMs onto hosts in use; among VMs of one size, those given first go first, so when
    /// not all fit, the older ones get the room. Decisions come back in the requests' order. Batches over
    /// ``exhaustiveBatchLimit`` VMs get the first order only (the cost grows with batch × hosts).
    public func placeBatch(_ requests: [PlacementRequest], on hosts: [HostCapacity]) -> [PlacementDecision] {
        placeBatchCountingOrders(requests, on: hosts).decisions
    }

    /// ``placeBatch(_:on:)``, and how many orders it placed the whole batch in.
    func placeBatchCountingOrders(_ requests: [PlacementRequest], on hosts: [HostCapacity])
        -> (decisions: [PlacementDecision], orders: Int)
    {
        guard !requests.isEmpty else { return ([], 0) }
        let maxCPUs = Double(max(hosts.map(\.cpus).max() ?? 1, 1))
        let maxMemory = Double(max(hosts.map(\.memoryBytes).max() ?? 1, 1))
        let keys: [(PlacementRequest) -> Double] = [
            { max(Double($0.cpus) / maxCPUs, Double($0.memoryBytes) / maxMemory) },
            { Double($0.cpus) / maxCPUs + Double($0.memoryBytes) / maxMemory },
            { Double($0.cpus) / maxCPUs },
            { Double($0.memoryBytes) / maxMemory },
        ]
        let packing = Self.packs(requests)
        func largestFirst(_ key: (PlacementRequest) -> Double, amongEquals first: (Int, Int) -> Bool) -> [Int] {
            requests.indices.sorted { a, b in
                let (ka, kb) = (key(requests[a]), key(requests[b]))
                return ka != kb ? ka > kb : first(a, b)
            }
        }
        // The first order tried: largest first, and among equals, in the order given (the
        // scheduler gives waiting VMs oldest first, a batch its VMs in order). Tried first, it is
        // kept when no other packs better: when not all fit, the older VMs get the room (by name,
        // `new1` took the host before `old1`, and `tt-10` before `tt-2`).
        var orders: [[Int]] = [largestFirst(keys[0], amongEquals: <)]
        // Then the packing orders, among equals by name, and seeded shuffles of the first of
        // them (perturbing it in blocks) for small batches, which escape most of the cases where
        // one order strands a host. The seed comes from the VM names, so every node computes the
        // same orders.
        if packing {
            let byName = keys.map { key in largestFirst(key) { requests[$0].vm < requests[$1].vm } }
            orders += byName
            if Self.triesRestarts(requestCount: requests.count, hostCount: hosts.count) {
                var rng = SeededGenerator(
                    seed: requests.reduce(0xcbf2_9ce4_8422_2325) { hash, r in
                        r.vm.utf8.reduce(hash) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
                    })
                for _ in 0..<Self.restarts {
                    var order = byName[0]
                    for i in order.indices.reversed() where i > 0 {
                        let j = Int(rng.next() % UInt64(min(i + 1, 4)))
                        order.swapAt(i, i - j)
                    }
                    orders.append(order)
                }
            }
        }
        // Orders that are the same give the same packing (the first of equal costs is kept, so
        // dropping the later copies changes nothing): a single VM, or a few of one size, would
        // otherwise be placed up to 29 times over.
        var distinctOrders: [[Int]] = []
        var seen = Set<[Int]>()
        for order in orders where seen.insert(order).inserted { distinctOrders.append(order) }
        let emptyBefore = Set(hosts.filter { $0.vmCount == 0 }.map(\.name))
        var best: [PlacementDecision]?
        var bestCost = (Int.max, Int.max)
        let table = HostTable(hosts)
        for order in distinctOrders {
            let placed = place(order.map { requests[$0] }, startingFrom: table)
            var decisions = [PlacementDecision?](repeating: nil, count: requests.count)
            for (k, i) in order.enumerated() { decisions[i] = placed[k] }
            let result = decisions.map { $0! }
            let cost = Self.cost(result, emptyBefore: emptyBefore)
            if cost < bestCost {
                best = result
                bestCost = cost
            }
        }
        guard var decisions = best else { return ([], distinctOrders.count) }
        if packing {
            decisions = consolidate(requests, decisions, startingFrom: table, emptyBefore: emptyBefore)
        }
        return (decisions, distinctOrders.count)
    }

    /// Whether ``placeBatch(_:on:)`` packs `requests`: tries several orders and consolidates.
    /// Packing passes only make sense when every VM asks to be packed. A VM with soft
    /// anti-affinity asks for the opposite within its group: the passes would count the hosts its
    /// spreading opened as waste and move it back beside its group (they did: `--count 3
    /// --anti-affinity soft` on three empty hosts ended on two).
    static func packs(_ requests: [PlacementRequest]) -> Bool {
        requests.count <= exhaustiveBatchLimit
            && requests.allSatisfy { $0.policy == .binpack && $0.antiAffinity != .soft }
    }

    /// Whether a packed batch also tries the seeded shuffles (``restarts``).
    static func triesRestarts(requestCount: Int, hostCount: Int) -> Bool {
        requestCount * max(hostCount, 1) <= restartBudget
    }

    /// At most how many times ``placeBatch(_:on:)`` places the whole batch: once per distinct
    /// order it tries (never more than the VMs have orders), plus about one for the consolidation
    /// pass of a packed batch.
    public static func maximumPasses(_ requests: [PlacementRequest], hostCount: Int) -> Int {
        guard packs(requests) else { return 1 }
        // The first order (among equals, as given), the four packing orders, and the restarts.
        let orders = triesRestarts(requestCount: requests.count, hostCount: hostCount) ? 5 + restarts : 5
        let permutations = (1...max(min(requests.count, 5), 1)).reduce(1, *)
        return min(orders, permutations) + 1
    }

    /// About how long ``placeBatch(_:on:)`` takes, from a model fitted to bench/placement's
    /// "Batches" table (2-core Intel VM, release build): building the host table costs about 2 µs
    /// per host (names sorted and indexed, capacities copied), and each pass places every VM at
    /// about 4 µs (its decision and explanation) plus 3 ns per host it scans. The node uses it to
    /// decide whether a batch may run on its event loop.
    public static func estimatedDuration(_ requests: [PlacementRequest], hostCount: Int) -> Duration {
        let passes = maximumPasses(requests, hostCount: hostCount)
        return .nanoseconds(hostCount * 2_000 + passes * requests.count * (4_000 + 3 * hostCount))
    }

    /// Batches up to this size get every order and the consolidation pass.
    public static let exhaustiveBatchLimit = 2_000
    /// Seeded restarts for batches whose VMs × hosts stay within ``restartBudget``.
    public static let restarts = 24
    /// The largest VMs × hosts for which a packed batch tries the ``restarts``.
    public static let restartBudget = 50_000

    /// (VMs left unplaced, hosts the batch opened): lower is better.
    static func cost(_ decisions: [PlacementDecision], emptyBefore: Set<String>) -> (Int, Int) {
        let opened = Set(decisions.compactMap(\.host).filter { emptyBefore.contains($0) })
        return (decisions.filter { $0.host == nil }.count, opened.count)
    }

    /// Tries to empty each host the batch opened, least loaded first, by placing its batch VMs on
    /// the other hosts in use; keeps every move that empties a host. `table` is the fleet before
    /// the batch.
    func consolidate(
        _ requests: [PlacementRequest], _ decisions: [PlacementDecision], startingFrom fleet: HostTable,
        emptyBefore: Set<String>
    ) -> [PlacementDecision] {
        var decisions = decisions
        // A host's VMs can only move to another host in use: with none in use before the batch
        // and one host opened by it, there is nothing to try.
        let opened = Set(decisions.compactMap(\.host).filter { emptyBefore.contains($0) })
        if opened.count <= 1 && emptyBefore.count == fleet.hosts.count { return decisions }
        var improved = true
        while improved {
            improved = false
            var load: [String: Double] = [:]
            for (r, d) in zip(requests, decisions) {
                if let h = d.host, emptyBefore.contains(h) {
                    load[h, default: 0] += Double(r.cpus) + Double(r.memoryBytes) / Double(1 << 30)
                }
            }
            for source in load.keys.sorted(by: { load[$0]! != load[$1]! ? load[$0]! < load[$1]! : $0 < $1 }) {
                // The fleet as it would be with every batch VM placed except those on `source`,
                // updated as each of those moves.
                var table = fleet
                var moving: [Int] = []
                for (i, (r, d)) in zip(requests, decisions).enumerated() {
                    guard let h = d.host else { continue }
                    if h == source { moving.append(i) } else { table.take(r, at: table.positions[h]!) }
                }
                table.drain(at: table.positions[source]!)
                let moves = moving.sorted {
                    (requests[$0].cpus, requests[$0].memoryBytes) > (requests[$1].cpus, requests[$1].memoryBytes)
                }
                var replaced: [(Int, PlacementDecision)] = []
                var ok = true
                for i in moves {
                    var d = place(requests[i], in: table)
                    guard let h = d.host, let p = table.positions[h], table.rows[p].vmCount > 0 else {
                        ok = false
                        break
                    }
                    // The source was set aside for this pass, not unready: the explanation says so.
                    d.explanation.movedOff = source
                    if let k = d.explanation.filteredOut.firstIndex(where: { $0.filter == Filter.notReady.name }) {
                        d.explanation.filteredOut[k].count -= 1
                    }
                    table.take(requests[i], at: p)
                    replaced.append((i, d))
                }
                if ok && !moves.isEmpty {
                    for (i, d) in replaced { decisions[i] = d }
                    improved = true
                    break
                }
            }
        }
        return decisions
    }

    // MARK: Filters

    enum Filter: Int, CaseIterable {
        case region, notReady, labels, cpus, memory, antiAffinity, affinity

        var name: String {
            switch self {
            case .region: "region"
            case .notReady: "not_ready"
            case .labels: "labels"
            case .cpus: "cpus"
            case .memory: "memory"
            case .antiAffinity: "anti_affinity"
            case .affinity: "affinity"
            }
        }
    }

    func firstFailingFilter(_ r: PlacementRequest, _ host: HostCapacity, affinityPresent: Bool) -> Filter? {
        if host.region != r.region { return .region }
        // (What a host is before what it does: one without the labels is that whether ready or
        // not, so a waiting VM's reason does not change as such a host comes and goes.)
        for (key, value) in r.requiredLabels where host.labels[key] != value { return .labels }
        if host.state != "ready" { return .notReady }
        if host.freeCPUs < r.cpus { return .cpus }
        if host.freeMemoryBytes < r.memoryBytes { return .memory }
        if r.antiAffinity == .hard, let group = r.group, (host.groups[group] ?? 0) > 0 { return .antiAffinity }
        if affinityPresent, let group = r.affinityGroup, (host.groups[group] ?? 0) == 0 { return .affinity }
        return nil
    }

    // MARK: Scores

    /// Opening an empty host costs more than any fit on a host in use (fewest hosts first).
    static let newHostWeight = 2.0
    /// Each VM of the same group on a host costs more than opening a new host.
    static let softAntiAffinityWeight = 4.0

    static func score(_ r: PlacementRequest, _ host: HostCapacity, sizeShare: Double) -> [PlacementDecision.ScoreTerm] {
        let cpuLeft = Double(host.freeCPUs - r.cpus) / Double(max(host.cpus, 1))
        let memoryLeft = Double(host.freeMemoryBytes - r.memoryBytes) / Double(max(host.memoryBytes, 1))
        var terms: [PlacementDecision.ScoreTerm]
        switch r.policy {
        case .binpack where host.vmCount == 0:
            terms = [
                .init(name: "new_host", value: newHostWeight),
                .init(name: "smaller_than_largest", value: 1 - sizeShare),
                .init(name: "stranded", value: abs(cpuLeft - memoryLeft)),
            ]
        case .binpack:
            terms = [
                .init(name: "left_over", value: (cpuLeft + memoryLeft) / 2),
                .init(name: "stranded", value: abs(cpuLeft - memoryLeft)),
            ]
        case .spread:
            terms = [.init(name: "free_after", value: -(cpuLeft + memoryLeft) / 2)]
        }
        if r.antiAffinity == .soft, let group = r.group {
            terms.append(
                .init(name: "soft_anti_affinity", value: softAntiAffinityWeight * Double(host.groups[group] ?? 0)))
        }
        return terms
    }

    // MARK: Reasons

    /// `reason` without its counts: two reasons of one kind (the same filters ruled the hosts
    /// out, "of 9 hosts: 9 without the labels" and "of 10 hosts: 10 without the labels") give the
    /// same. The scheduler records a waiting VM's reason again only when its kind changes: with
    /// every host added or gone, each VM that waits was written again (a record and a `vm_events`
    /// row each) for its counts alone.
    public static func reasonKind(_ reason: String) -> String {
        var kind = ""
        var inNumber = false
        for character in reason {
            if character.isASCII && character.isNumber {
                if !inNumber { kind.append("#") }
                inNumber = true
            } else {
                kind.append(character)
                inNumber = false
            }
        }
        // ("of 1 host" and "of 2 hosts" too.)
        return kind.replacing("hosts", with: "host")
    }

    /// Why no host took `r`, from how many hosts each filter ruled out (`counts`, the hosts too
    /// small for it taken out) and how many lack the CPUs or the memory even when empty (`tooSmall`).
    static func reason(_ r: PlacementRequest, full counts: [Int], tooSmall: (cpus: Int, memory: Int), hosts: Int)
        -> String
    {
        let inRegion = hosts - counts[Filter.region.rawValue]
        if inRegion == 0 { return "no host in \(r.region)" }
        let labelled =
            r.requiredLabels.isEmpty
            ? ""
            : " labelled "
                + r.requiredLabels.keys.sorted().map { "\($0)=\(r.requiredLabels[$0]!)" }.joined(separator: ",")
        // Ruled out by groups alone, not by room: the head does not claim a want of room (it read
        // "no host with 1 free CPU …; of 4 hosts: 3 already running group web", those hosts roomy).
        let byRoom =
            counts[Filter.cpus.rawValue] + counts[Filter.memory.rawValue] + tooSmall.cpus + tooSmall.memory
        let byGroups = counts[Filter.antiAffinity.rawValue] + counts[Filter.affinity.rawValue]
        var reason =
            byRoom == 0 && byGroups > 0
            ? "no host in \(r.region)\(labelled) can take it"
            : "no host in \(r.region) with \(r.cpus) free CPU\(r.cpus == 1 ? "" : "s") and \(formatBytes(r.memoryBytes)) free memory\(labelled)"
        var why: [String] = []
        let phrases: [(Filter, String)] = [
            (.notReady, "not ready"), (.labels, "without the labels"), (.cpus, "full on CPUs"),
            (.memory, "full on memory"), (.antiAffinity, "already running group \(r.group ?? "")"),
            (.affinity, "not running group \(r.affinityGroup ?? "")"),
        ]
        for (filter, phrase) in phrases where counts[filter.rawValue] > 0 {
            why.append("\(counts[filter.rawValue]) \(phrase)")
        }
        if tooSmall.cpus > 0 { why.append("\(tooSmall.cpus) with fewer than \(r.cpus) CPUs in all") }
        if tooSmall.memory > 0 {
            why.append("\(tooSmall.memory) with less than \(formatBytes(r.memoryBytes)) of memory in all")
        }
        if !why.isEmpty { reason += "; of \(inRegion) host\(inRegion == 1 ? "" : "s"): " + why.joined(separator: ", ") }
        return reason
    }
}

/// A count of CPUs in words: "1 CPU", "4 CPUs".
public func formatCPUs(_ count: Int) -> String { "\(count) CPU\(count == 1 ? "" : "s")" }

/// Bytes in the largest binary unit that keeps the number readable ("2GiB", "1.5GiB", "512MiB").
public func formatBytes(_ bytes: Int64) -> String {
    let units: [(String, Int64)] = [
        ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
    ]
    for (unit, size) in units where bytes >= size {
        let value = Double(bytes) / Double(size)
        if value == value.rounded() { return "\(Int64(value))\(unit)" }
        return "\((value * 100).rounded() / 100)\(unit)"
    }
    return "\(bytes)B"
}

/// SplitMix64: a small seeded generator, so "random" restarts are the same on every node (and
/// seeded tests and benchmarks replay exactly).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
