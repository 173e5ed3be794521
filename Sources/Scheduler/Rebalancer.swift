/// Proposes migrations that make a region's placement better, without moving anything: empties
/// hosts whose VMs fit on other hosts in use (fewer hosts in use), and moves VMs off hosts where
/// their soft anti-affinity group is doubled up. Pure: the same fleet gives the same plan.
public struct Rebalancer: Sendable {
    /// One proposed migration and why.
    public struct Move: Sendable, Equatable {
        public var vm: String
        public var from: String
        public var to: String
        public var reason: String
        public var gain: String
    }

    let placer = Placer(candidatesShown: 1)

    public init() {}

    /// `placed` are the VMs running now, each with the host it is on.
    public func plan(hosts: [HostCapacity], placed: [(request: PlacementRequest, host: String)], region: String?)
        -> [Move]
    {
        var state = hosts
        let position = Dictionary(uniqueKeysWithValues: state.enumerated().map { ($1.name, $0) })
        var location: [String: String] = [:]
        for (request, host) in placed { location[request.vm] = host }
        var moves: [Move] = []
        let inRegion = { (host: HostCapacity) in region == nil || host.region == region }

        // 1. Empty the least loaded hosts whose VMs all fit on other hosts in use.
        let load = { (h: HostCapacity) in
            Double(h.cpusUsed) / Double(max(h.cpus, 1)) + Double(h.memoryUsedBytes) / Double(max(h.memoryBytes, 1))
        }
        let sources = state.filter { inRegion($0) && $0.vmCount > 0 }
            .sorted { (load($0), $0.name) < (load($1), $1.name) }.map(\.name)
        var emptied: Set<String> = []
        for source in sources {
            let vms = placed.filter { location[$0.request.vm] == source }.map(\.request)
                .sorted { ($0.cpus, $0.memoryBytes, $0.vm) > ($1.cpus, $1.memoryBytes, $1.vm) }
            guard !vms.isEmpty else { continue }
            var trial = state
            let s = position[source]!
            for vm in vms { trial[s].release(vm) }
            trial[s].state = "rebalancing"
            for name in emptied { trial[position[name]!].state = "rebalancing" }
            var planned: [Move] = []
            for vm in vms {
                let decision = placer.place(vm, on: trial)
                guard let target = decision.host, let t = position[target], trial[t].vmCount > 0 else {
                    planned = []
                    break
                }
                trial[t].take(vm)
                planned.append(
                    Move(
                        vm: vm.vm, from: source, to: target,
                        reason:
                            "empty host \(source): its \(vms.count) VM\(vms.count == 1 ? "" : "s") fit on hosts in use",
                        gain: "hosts in use -1 (when all \(vms.count) moves of \(source) are done)"))
            }
            guard planned.count == vms.count else { continue }
            trial[s].state = state[s].state
            state = trial
            emptied.insert(source)
            for move in planned { location[move.vm] = move.to }
            moves += planned
        }

        // 2. Repair soft anti-affinity: a VM whose group is doubled up on its host moves if another host takes it.
        for (request, _) in placed where request.antiAffinity == .soft {
            guard let group = request.group, let current = location[request.vm], let c = position[current],
                inRegion(state[c]), (state[c].groups[group] ?? 0) > 1
            else { continue }
            var trial = state
            trial[c].release(request)
            trial[c].state = "rebalancing"
            for name in emptied { trial[position[name]!].state = "rebalancing" }
            var hard = request
            hard.antiAffinity = .hard
            let decision = placer.place(hard, on: trial)
            guard let target = decision.host, let t = position[target] else { continue }
            trial[c].state = state[c].state
            trial[t].take(request)
            state = trial
            location[request.vm] = target
            moves.append(
                Move(
                    vm: request.vm, from: current, to: target,
                    reason:
                        "soft anti-affinity: group \(group) has \((state[c].groups[group] ?? 0) + 1) VMs on \(current)",
                    gain: "group \(group) no longer shares \(current) with this VM"))
        }
        return Self.movingEachVMOnce(moves)
    }

    /// `moves` with each VM's moves made one, from where it was to where it ends, at the place of
    /// its last (a VM moved onto a host that a later step empties moved twice, each a
    /// migration). Still sound in that order: the host a VM leaves later takes nothing meanwhile
    /// (an emptied host is never a target), and the one it no longer passes through carries less.
    static func movingEachVMOnce(_ moves: [Move]) -> [Move] {
        var kept: [Move?] = []
        var slot: [String: Int] = [:]
        for move in moves {
            var merged = move
            if let earlier = slot[move.vm], let first = kept[earlier] {
                kept[earlier] = nil
                merged = Move(
                    vm: move.vm, from: first.from, to: move.to, reason: first.reason + "; then " + move.reason,
                    gain: move.gain)
            }
            slot[move.vm] = kept.count
            kept.append(merged.from == merged.to ? nil : merged)
        }
        return kept.compactMap { $0 }
    }
}
