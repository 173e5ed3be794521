import Testing

@testable import Scheduler

@Suite struct PlacerTests {
    let gib: Int64 = 1 << 30

    @Test("among hosts in use, bin-packing picks the one left with the least free capacity")
    func bestFit() {
        let hosts = [
            HostCapacity(
                name: "big", region: "eu", cpus: 64, memoryBytes: 256 * gib, cpusUsed: 1, memoryUsedBytes: gib,
                vmCount: 1),
            HostCapacity(
                name: "snug", region: "eu", cpus: 4, memoryBytes: 8 * gib, cpusUsed: 2, memoryUsedBytes: 6 * gib,
                vmCount: 1),
            HostCapacity(name: "other-region", region: "us", cpus: 2, memoryBytes: 2 * gib),
        ]
        let decision = Placer().place(PlacementRequest(vm: "v", region: "eu", cpus: 2, memoryBytes: 2 * gib), on: hosts)
        #expect(decision.host == "snug")
        #expect(decision.explanation.candidates.map(\.host) == ["snug", "big"])
        #expect(decision.explanation.filteredOut.first { $0.filter == "region" }?.count == 1)
    }

    @Test("ties go to the name that sorts first, whatever the input order")
    func deterministicTies() {
        let a = HostCapacity(name: "a", region: "eu", cpus: 8, memoryBytes: 8 * gib)
        let b = HostCapacity(name: "b", region: "eu", cpus: 8, memoryBytes: 8 * gib)
        let request = PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib)
        #expect(Placer().place(request, on: [a, b]).host == "a")
        #expect(Placer().place(request, on: [b, a]).host == "a")
    }

    @Test("in a batch, VMs of one size that do not all fit are placed in the order given (oldest first), not by name")
    func equalVMsGoInTheOrderGiven() {
        let host = HostCapacity(name: "h1", region: "eu", cpus: 2, memoryBytes: 8 * gib)
        func requests(_ names: [String]) -> [PlacementRequest] {
            names.map { PlacementRequest(vm: $0, region: "eu", cpus: 1, memoryBytes: 32 << 20) }
        }
        // tt-1 … tt-12 (a --count batch): tt-1 and tt-2 get the two CPUs, not tt-1 and tt-10.
        let batch = requests((1...12).map { "tt-\($0)" })
        let placed = zip(batch, Placer().placeBatch(batch, on: [host])).filter { $0.1.host != nil }.map(\.0.vm)
        #expect(placed == ["tt-1", "tt-2"])
        // Waiting VMs come oldest first: old1 and old2 before new1, whose name sorts first.
        let waiting = requests(["old1", "old2", "old3", "new1"])
        let taken = zip(waiting, Placer().placeBatch(waiting, on: [host])).filter { $0.1.host != nil }.map(\.0.vm)
        #expect(taken == ["old1", "old2"])
    }

    @Test(
        "a VM that fits nowhere gets a reason naming the exhausted dimension, and the hosts too small for it even when empty"
    )
    func unschedulable() {
        let hosts = [
            HostCapacity(name: "h1", region: "eu", cpus: 8, memoryBytes: 4 * gib),
            HostCapacity(name: "h2", region: "eu", cpus: 2, memoryBytes: 64 * gib),
            HostCapacity(name: "h3", region: "eu", state: "draining", cpus: 64, memoryBytes: 64 * gib),
            HostCapacity(name: "h4", region: "eu", cpus: 8, memoryBytes: 16 * gib, cpusUsed: 6),
            HostCapacity(name: "h5", region: "eu", cpus: 8, memoryBytes: 16 * gib, memoryUsedBytes: 12 * gib),
        ]
        let request = PlacementRequest(vm: "v", region: "eu", cpus: 4, memoryBytes: 8 * gib)
        let decision = Placer().place(request, on: hosts)
        #expect(decision.host == nil)
        #expect(
            decision.reason
                == "no host in eu with 4 free CPUs and 8GiB free memory; of 5 hosts: 1 not ready, 1 full on CPUs, 1 full on memory, 1 with fewer than 4 CPUs in all, 1 with less than 8GiB of memory in all"
        )
        // Only too small: the reason says so, not that the host is full.
        let small = Placer().place(request, on: [hosts[1]])
        #expect(
            small.reason
                == "no host in eu with 4 free CPUs and 8GiB free memory; of 1 host: 1 with fewer than 4 CPUs in all")
        // Full on CPUs, or not ready, but too small on memory even when empty: too small, whatever
        // its CPUs or readiness do (the reason flipped as they came and went, and each flip was
        // written to the log).
        for (cpusUsed, state) in [(0, "ready"), (8, "ready"), (0, "not_ready")] {
            let host = HostCapacity(
                name: "h6", region: "eu", state: state, cpus: 8, memoryBytes: 4 * gib, cpusUsed: cpusUsed)
            #expect(
                Placer().place(request, on: [host]).reason
                    == "no host in eu with 4 free CPUs and 8GiB free memory; of 1 host: 1 with less than 8GiB of memory in all",
                "\(cpusUsed) CPUs used, \(state)")
        }
        let none = Placer().place(PlacementRequest(vm: "v", region: "ap", cpus: 1, memoryBytes: gib), on: hosts)
        #expect(none.reason == "no host in ap")
    }

    @Test("placing many VMs never oversubscribes a host (random instances)")
    func neverOversubscribes() {
        var rng = SeededGenerator(seed: 42)
        for _ in 0..<200 {
            let hosts = (0..<Int(rng.next() % 6 + 1)).map {
                HostCapacity(
                    name: "h\($0)", region: "eu", cpus: Int(rng.next() % 16 + 1),
                    memoryBytes: Int64(rng.next() % 32 + 1) * gib)
            }
            let requests = (0..<Int(rng.next() % 30)).map {
                PlacementRequest(
                    vm: "v\($0)", region: "eu", cpus: Int(rng.next() % 8 + 1),
                    memoryBytes: Int64(rng.next() % 8 + 1) * gib)
            }
            let decisions = Placer().place(requests, on: hosts)
            var used: [String: (Int, Int64)] = [:]
            for (request, decision) in zip(requests, decisions) {
                guard let host = decision.host else {
                    #expect(!decision.reason.isEmpty)
                    continue
                }
                used[host, default: (0, 0)].0 += request.cpus
                used[host, default: (0, 0)].1 += request.memoryBytes
            }
            for host in hosts {
                #expect((used[host.name]?.0 ?? 0) <= host.cpus)
                #expect((used[host.name]?.1 ?? 0) <= host.memoryBytes)
            }
        }
    }

    @Test("the explanation is stable JSON with each candidate's score breakdown")
    func explanationJSON() {
        let hosts = [HostCapacity(name: "h1", region: "eu", cpus: 4, memoryBytes: 4 * gib)]
        let decision = Placer().place(PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib), on: hosts)
        #expect(
            decision.explanation.json
                == #"{"policy":"binpack","hosts_evaluated":1,"filtered_out":{"region":0,"not_ready":0,"labels":0,"cpus":0,"memory":0,"anti_affinity":0,"affinity":0},"candidates":[{"host":"h1","score":2,"breakdown":{"new_host":2,"smaller_than_largest":0,"stranded":0},"free_cpus_after":3,"free_memory_bytes_after":3221225472}]}"#
        )
    }

    @Test("bin-packing prefers a host already in use over an empty one")
    func fewestHosts() {
        let hosts = [
            HostCapacity(name: "empty", region: "eu", cpus: 4, memoryBytes: 4 * gib),
            HostCapacity(
                name: "busy", region: "eu", cpus: 16, memoryBytes: 16 * gib, cpusUsed: 2, memoryUsedBytes: 2 * gib,
                vmCount: 1),
        ]
        let request = PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib)
        #expect(Placer().place(request, on: hosts).host == "busy")
        var spread = request
        spread.policy = .spread
        #expect(Placer().place(spread, on: hosts).host == "busy")  // most free share left: 13/16 vs 3/4
        let fresh = [
            HostCapacity(
                name: "a", region: "eu", cpus: 8, memoryBytes: 8 * gib, cpusUsed: 6, memoryUsedBytes: 6 * gib,
                vmCount: 3),
            HostCapacity(name: "b", region: "eu", cpus: 8, memoryBytes: 8 * gib),
        ]
        #expect(Placer().place(spread, on: fresh).host == "b")
        #expect(Placer().place(request, on: fresh).host == "a")
    }

    @Test("required labels filter hosts")
    func labels() {
        let hosts = [
            HostCapacity(name: "plain", region: "eu", cpus: 8, memoryBytes: 8 * gib),
            HostCapacity(name: "fast", region: "eu", cpus: 64, memoryBytes: 64 * gib, labels: ["disk": "ssd"]),
        ]
        var request = PlacementRequest(
            vm: "v", region: "eu", cpus: 1, memoryBytes: gib, requiredLabels: ["disk": "ssd"])
        let decision = Placer().place(request, on: hosts)
        #expect(decision.host == "fast")
        #expect(decision.explanation.filteredOut.first { $0.filter == "labels" }?.count == 1)
        request.requiredLabels = ["disk": "nvme"]
        let none = Placer().place(request, on: hosts)
        #expect(none.host == nil)
        #expect(none.reason.contains("labelled disk=nvme") && none.reason.contains("2 without the labels"))
    }

    @Test("soft anti-affinity prefers another host but falls back; hard never shares")
    func antiAffinity() {
        let hosts = [
            HostCapacity(
                name: "a", region: "eu", cpus: 8, memoryBytes: 8 * gib, cpusUsed: 1, memoryUsedBytes: gib,
                groups: ["web": 1], vmCount: 1),
            HostCapacity(name: "b", region: "eu", cpus: 8, memoryBytes: 8 * gib),
        ]
        let soft = PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib, group: "web", antiAffinity: .soft)
        #expect(Placer().place(soft, on: hosts).host == "b")
        #expect(Placer().place(soft, on: [hosts[0]]).host == "a")
        let hard = PlacementRequest(vm: "v", region: "eu", cpus: 1, memoryBytes: gib, group: "web", antiAffinity: .hard)
        #expect(Placer().place(hard, on: hosts).host == "b")
        let refused = Placer().place(hard, on: [hosts[0]])
        #expect(
            refused.host == nil
                && refused.reason == "no host in eu can take it; of 1 host: 1 already running group web",
            "\(refused.reason)")
    }

    @Test("a batch with soft anti-affinity spreads over empty hosts: the packing passes do not undo it")
    func softAntiAffinityBatch() {
        let hosts = (1...3).map { HostCapacity(name: "h\($0)", region: "eu", cpus: 16, memoryBytes: 64 * gib) }
        let requests = (1...3).map {
            PlacementRequest(
                vm: "api-\($0)", region: "eu", cpus: 1, memoryBytes: gib, group: "api", antiAffinity: .soft)
        }
        let decisions = Placer().placeBatch(requests, on: hosts)
        #expect(Set(decisions.compactMap(\.host)) == ["h1", "h2", "h3"], "\(decisions.map(\.host))")
        for decision in decisions {
            // Every host is ready: no explanation blames one that was only set aside by a pass.
            #expect(decision.explanation.filteredOut.allSatisfy { $0.count == 0 }, "\(decision.explanation)")
        }
        // Four VMs on three hosts: one host takes two, none takes more.
        let four =
            requests + [
                PlacementRequest(
                    vm: "api-4", region: "eu", cpus: 1, memoryBytes: gib, group: "api", antiAffinity: .soft)
            ]
        let counts = Dictionary(grouping: Placer().placeBatch(four, on: hosts).compactMap(\.host), by: { $0 })
        #expect(counts.count == 3 && counts.values.allSatisfy { $0.count <= 2 }, "\(counts)")
    }

    @Test("a VM the batch's packing moved names the host it left, which no filter is blamed for")
    func packingMovesAreExplained() {
        // Two small VMs a first pass spread over two empty hosts: the packing pass empties one.
        let hosts = ["e1", "e2"].map { HostCapacity(name: $0, region: "eu", cpus: 16, memoryBytes: 16 * gib) }
        let requests = ["a", "b"].map { PlacementRequest(vm: $0, region: "eu", cpus: 1, memoryBytes: gib) }
        let table = HostTable(hosts)
        let spread = zip(requests, ["e1", "e2"]).map { request, host in
            var decision = Placer().place(request, in: table)
            decision.host = host
            return decision
        }
        let packed = Placer().consolidate(
            requests, spread, startingFrom: table, emptyBefore: ["e1", "e2"])
        #expect(Set(packed.compactMap(\.host)).count == 1, "\(packed.map(\.host))")
        let moved = packed.filter { $0.explanation.movedOff != nil }
        #expect(moved.count == 1)
        for decision in moved {
            let source = decision.explanation.movedOff!
            #expect(decision.host != source)
            // Both hosts are ready: the one set aside for the pass is not counted unready.
            #expect(decision.explanation.filteredOut.first { $0.filter == "not_ready" }?.count == 0)
            #expect(decision.explanation.json.hasSuffix(",\"moved_off\":\"\(source)\"}"))
        }
    }

    @Test("affinity follows the group's VMs when it has any")
    func affinity() {
        let hosts = [
            HostCapacity(name: "a", region: "eu", cpus: 8, memoryBytes: 8 * gib),
            HostCapacity(
                name: "b", region: "eu", cpus: 64, memoryBytes: 64 * gib, cpusUsed: 1, memoryUsedBytes: gib,
                groups: ["db": 1], vmCount: 1),
        ]
        let request = PlacementRequest(vm: "cache", region: "eu", cpus: 1, memoryBytes: gib, affinityGroup: "db")
        #expect(Placer().place(request, on: hosts).host == "b")
        let lonely = PlacementRequest(vm: "cache", region: "eu", cpus: 1, memoryBytes: gib, affinityGroup: "nobody")
        #expect(Placer().place(lonely, on: hosts).host != nil)
        // The group runs only in another region: no binding here, the VM is placed in its own.
        let elsewhere = PlacementRequest(vm: "cache", region: "us", cpus: 1, memoryBytes: gib, affinityGroup: "db")
        let usHost = HostCapacity(name: "c", region: "us", cpus: 8, memoryBytes: 8 * gib)
        #expect(Placer().place(elsewhere, on: hosts + [usHost]).host == "c")
    }

    @Test("hard anti-affinity is never violated, and no host oversubscribed, over random batches")
    func hardAntiAffinityProperty() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<200 {
            let hosts = (0..<Int(rng.next() % 8 + 1)).map {
                HostCapacity(
                    name: "h\($0)", region: "eu", cpus: Int(rng.next() % 16 + 1),
                    memoryBytes: Int64(rng.next() % 32 + 1) * gib)
            }
            let requests = (0..<Int(rng.next() % 30)).map {
                PlacementRequest(
                    vm: "v\($0)", region: "eu", cpus: Int(rng.next() % 4 + 1),
                    memoryBytes: Int64(rng.next() % 4 + 1) * gib,
                    group: "g\($0 % 3)", antiAffinity: $0 % 3 == 0 ? .soft : .hard)
            }
            let decisions = Placer().placeBatch(requests, on: hosts)
            var allGroupsOnHost: [String: [String]] = [:]
            var used: [String: (cpus: Int, memory: Int64)] = [:]
            for (r, d) in zip(requests, decisions) {
                guard let h = d.host else { continue }
                allGroupsOnHost[h, default: []].append(r.group!)
                used[h, default: (0, 0)].cpus += r.cpus
                used[h, default: (0, 0)].memory += r.memoryBytes
            }
            for host in hosts {
                #expect((used[host.name]?.cpus ?? 0) <= host.cpus)
                #expect((used[host.name]?.memory ?? 0) <= host.memoryBytes)
            }
            for (r, d) in zip(requests, decisions) where r.antiAffinity == .hard {
                guard let h = d.host else { continue }
                #expect(allGroupsOnHost[h]!.filter { $0 == r.group! }.count == 1, "group \(r.group!) shares host \(h)")
            }
        }
    }

    @Test("each candidate's score is the sum of its breakdown, for every policy and constraint")
    func scoreMatchesBreakdown() {
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<100 {
            let hosts = (0..<6).map { i -> HostCapacity in
                let cpus = Int(rng.next() % 16 + 4)
                let used = i % 3 == 0 ? 0 : Int(rng.next() % 3)
                return HostCapacity(
                    name: "h\(i)", region: "eu", cpus: cpus, memoryBytes: Int64(cpus) * gib, cpusUsed: used,
                    memoryUsedBytes: Int64(used) * gib, groups: used > 0 ? ["g": 1] : [:], vmCount: used > 0 ? 1 : 0)
            }
            let request = PlacementRequest(
                vm: "v", region: "eu", cpus: Int(rng.next() % 3 + 1), memoryBytes: gib, group: "g",
                antiAffinity: rng.next() % 2 == 0 ? .soft : nil, policy: rng.next() % 2 == 0 ? .binpack : .spread)
            for candidate in Placer(candidatesShown: 6).place(request, on: hosts).explanation.candidates {
                let sum = candidate.breakdown.reduce(0) { $0 + $1.value }
                #expect(
                    abs(sum - candidate.score) < 1e-9, "\(candidate.host): \(candidate.breakdown) vs \(candidate.score)"
                )
            }
        }
    }

    @Test("a batch is placed largest first, which packs better than arrival order")
    func batchPacking() {
        let hosts = (0..<2).map { HostCapacity(name: "h\($0)", region: "eu", cpus: 8, memoryBytes: 8 * gib) }
        // Arrival order small-first would strand the 6-CPU VM; largest first fits all on two hosts.
        let requests = [
            PlacementRequest(vm: "s1", region: "eu", cpus: 3, memoryBytes: gib),
            PlacementRequest(vm: "s2", region: "eu", cpus: 3, memoryBytes: gib),
            PlacementRequest(vm: "big1", region: "eu", cpus: 5, memoryBytes: gib),
            PlacementRequest(vm: "big2", region: "eu", cpus: 5, memoryBytes: gib),
        ]
        #expect(Placer().placeBatch(requests, on: hosts).allSatisfy { $0.host != nil })
        #expect(Placer().place(requests, on: hosts).contains { $0.host == nil })
    }

    @Test("a batch is placed once per distinct order, and never in more passes than the estimate says")
    func passes() {
        func vms(_ sizes: [Int], policy: PlacementPolicy = .binpack) -> [PlacementRequest] {
            sizes.enumerated().map {
                PlacementRequest(
                    vm: "v\($0.offset)", region: "eu", cpus: $0.element, memoryBytes: 1 << 30, policy: policy)
            }
        }
        let fleet = (0..<64).map { HostCapacity(name: "h\($0)", region: "eu", cpus: 16, memoryBytes: 64 << 30) }
        let placer = Placer()
        #expect(placer.placeBatchCountingOrders(vms([2]), on: fleet).orders == 1, "one VM has one order")
        #expect(placer.placeBatchCountingOrders(vms([1, 2, 3]), on: fleet).orders <= 6, "three VMs have six")
        #expect(placer.placeBatchCountingOrders(vms([2, 2, 2, 2]), on: fleet).orders <= 24)
        #expect(placer.placeBatchCountingOrders(vms([2], policy: .spread), on: fleet).orders == 1)
        // The estimate's passes: the distinct orders at most, and one for the consolidation.
        #expect(Placer.maximumPasses(vms([2]), hostCount: 64) == 2)
        #expect(Placer.maximumPasses(vms([1, 2]), hostCount: 64) == 3)
        #expect(Placer.maximumPasses(vms([1, 2, 3]), hostCount: 64) == 7)
        #expect(Placer.maximumPasses(vms(Array(repeating: 1, count: 10)), hostCount: 64) == 5 + Placer.restarts + 1)
        #expect(
            Placer.maximumPasses(vms(Array(repeating: 1, count: 10)), hostCount: 10_000) == 5 + 1,
            "no restarts above the budget")
        #expect(Placer.maximumPasses(vms([2, 2], policy: .spread), hostCount: 64) == 1)
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<50 {
            let batch = vms((0..<Int.random(in: 1...12, using: &rng)).map { _ in Int.random(in: 1...4, using: &rng) })
            let hosts = Array(fleet.prefix(Int.random(in: 1...64, using: &rng)))
            let orders = placer.placeBatchCountingOrders(batch, on: hosts).orders
            #expect(orders >= 1)
            #expect(orders + 1 <= Placer.maximumPasses(batch, hostCount: hosts.count))
        }
    }

    @Test("the same fleet gives the same decisions whatever order the hosts are listed in")
    func orderIndependent() {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<50 {
            let hosts = (0..<8).map {
                HostCapacity(
                    name: "h\($0)", region: "eu", cpus: Int(rng.next() % 16 + 4),
                    memoryBytes: Int64(rng.next() % 32 + 4) * gib)
            }
            let requests = (0..<20).map {
                PlacementRequest(
                    vm: "v\($0)", region: "eu", cpus: Int(rng.next() % 4 + 1),
                    memoryBytes: Int64(rng.next() % 4 + 1) * gib)
            }
            let a = Placer().placeBatch(requests, on: hosts).map(\.host)
            let b = Placer().placeBatch(requests, on: hosts.reversed()).map(\.host)
            #expect(a == b)
        }
    }

    @Test("rebalancing empties the least loaded host when its VMs fit elsewhere")
    func rebalancer() {
        let hosts = [
            HostCapacity(
                name: "a", region: "eu", cpus: 8, memoryBytes: 8 * gib, cpusUsed: 2, memoryUsedBytes: 2 * gib,
                vmCount: 1),
            HostCapacity(
                name: "b", region: "eu", cpus: 8, memoryBytes: 8 * gib, cpusUsed: 4, memoryUsedBytes: 4 * gib,
                vmCount: 2),
        ]
        let placed: [(request: PlacementRequest, host: String)] = [
            (PlacementRequest(vm: "x", region: "eu", cpus: 2, memoryBytes: 2 * gib), "a"),
            (PlacementRequest(vm: "y", region: "eu", cpus: 2, memoryBytes: 2 * gib), "b"),
            (PlacementRequest(vm: "z", region: "eu", cpus: 2, memoryBytes: 2 * gib), "b"),
        ]
        let moves = Rebalancer().plan(hosts: hosts, placed: placed, region: nil)
        #expect(moves.map { "\($0.vm):\($0.from)->\($0.to)" } == ["x:a->b"])
    }

    @Test("a rebalance moves each VM at most once, from where it is to where it ends, however many hosts it empties")
    func rebalancerMovesAVMOnce() {
        // Five hosts with one small VM each (spread); the plan packs them onto two.
        let names = ["a", "b", "c", "d", "e"]
        let hosts = names.map {
            HostCapacity(
                name: $0, region: "eu", cpus: 4, memoryBytes: 8 * gib, cpusUsed: 1, memoryUsedBytes: gib / 2,
                vmCount: 1)
        }
        let placed: [(request: PlacementRequest, host: String)] = names.enumerated().map {
            (PlacementRequest(vm: "s-\($0.offset + 1)", region: "eu", cpus: 1, memoryBytes: gib / 2), $0.element)
        }
        let moves = Rebalancer().plan(hosts: hosts, placed: placed, region: nil)
        // (It planned s-1 a->b, then s-1 b->d, s-2 b->c, then s-2 c->d: five moves for three.)
        #expect(Set(moves.map(\.vm)).count == moves.count, "\(moves.map { "\($0.vm):\($0.from)->\($0.to)" })")
        var location = Dictionary(uniqueKeysWithValues: placed.map { ($0.request.vm, $0.host) })
        for move in moves {
            #expect(location[move.vm] == move.from && move.from != move.to)
            location[move.vm] = move.to
        }
        #expect(Set(location.values).count == 2, "\(location)")
        #expect(moves.count == 3)
    }

    @Test("a waiting VM's reason keeps its kind while only its counts change; another filter is another kind")
    func reasonKinds() {
        let nine =
            "no host in eu with 1 free CPU and 512MiB free memory labelled disk=ssd; of 9 hosts: 9 without the labels"
        let ten =
            "no host in eu with 1 free CPU and 512MiB free memory labelled disk=ssd; of 10 hosts: 10 without the labels"
        let one =
            "no host in eu with 1 free CPU and 512MiB free memory labelled disk=ssd; of 1 host: 1 without the labels"
        #expect(Placer.reasonKind(nine) == Placer.reasonKind(ten))
        #expect(Placer.reasonKind(nine) == Placer.reasonKind(one))
        let notReady =
            "no host in eu with 1 free CPU and 512MiB free memory labelled disk=ssd; of 10 hosts: 1 not ready, 9 without the labels"
        #expect(Placer.reasonKind(nine) != Placer.reasonKind(notReady))
        // A host without the labels counts as that whether it is ready or not.
        var hosts = (0..<3).map {
            HostCapacity(
                name: "h\($0)", region: "eu", cpus: 4, memoryBytes: 8 * gib, cpusUsed: 0, memoryUsedBytes: 0, vmCount: 0
            )
        }
        let request = PlacementRequest(
            vm: "v", region: "eu", cpus: 1, memoryBytes: gib / 2, requiredLabels: ["disk": "ssd"])
        let ready = Placer().place(request, on: hosts).reason
        hosts[1].state = "not_ready"
        #expect(Placer().place(request, on: hosts).reason == ready)
        #expect(ready.hasSuffix("of 3 hosts: 3 without the labels"), "\(ready)")
    }

    @Test("sizes print in the largest exact binary unit")
    func formatting() {
        #expect(formatBytes(512 << 20) == "512MiB")
        #expect(formatBytes(3 << 29) == "1.5GiB")
        #expect(formatBytes(1000) == "1000B")
    }
}
