import Foundation
import Scheduler
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct NodePlacementTests {
    static let gib: Int64 = 1 << 30

    static func host(_ name: String, cpus: Int = 8, memory: Int64 = 16 << 30, labels: [String: String] = [:]) -> Intent
    {
        .addHost(HostAdded(name: name, region: "eu", cpus: cpus, memoryBytes: memory, labels: labels))
    }

    static func vm(
        _ name: String, cpus: Int = 2, group: String? = nil, antiAffinity: String? = nil,
        require: [String: String] = [:]
    ) -> VMCreated {
        var vm = VMCreated(name: name, region: "", cpus: cpus, memoryBytes: 2 << 30, image: "")
        vm.group = group
        vm.antiAffinity = antiAffinity
        vm.requiredLabels = require
        return vm
    }

    @Test("plan writes nothing; --check-index commits exactly the plan, and refuses after a change")
    func planAndCheckIndex() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            _ = try await node.submit(Self.host("b", cpus: 4))
            let before = node.log.lastIndex
            let plan = try await node.plan([Self.vm("web-1")])
            #expect(node.log.lastIndex == before)
            #expect(plan.placementIndex == 2)
            let planned = plan.decisions[0].decision.host
            #expect(planned == "a")  // both empty: the larger host opens first
            let receipts = try await node.createVMs(
                [Self.vm("web-1")], requestID: "r1", checkIndex: plan.placementIndex)
            #expect(receipts.count == 1)
            #expect(try await rows(node, "SELECT host FROM vms WHERE name = 'web-1'") == "[[\"\(planned!)\"]]")
            // A plan for a name taken, or one named twice, is refused as creating them would be.
            await #expect {
                try await node.plan([Self.vm("web-1")])
            } throws: { error in
                (error as? NodeError)?.code == .conflict && "\(error)".contains("VM web-1 already exists")
            }
            await #expect {
                try await node.plan([Self.vm("web-5"), Self.vm("web-5")])
            } throws: { error in
                (error as? NodeError)?.code == .invalid && "\(error)".contains("names a VM twice")
            }
            // Something placement depends on changed since: refused, nothing written.
            let stale = node.log.lastIndex
            await #expect {
                try await node.createVMs([Self.vm("web-2")], requestID: "r2", checkIndex: plan.placementIndex)
            } throws: { error in
                (error as? NodeError)?.code == .conflict
                    && (error as? NodeError)?.message.contains("nothing was written") == true
            }
            #expect(node.log.lastIndex == stale)
        }
    }

    @Test("--check-index answers a VM the plan found no host for as unschedulable, with the plan's reason")
    func checkIndexCommitsThePlansUnschedulable() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            let vms = [Self.vm("web-1"), Self.vm("huge", cpus: 64)]
            let plan = try await node.plan(vms)
            let reason = try #require(plan.decisions[1].decision.host == nil ? plan.decisions[1].decision.reason : nil)
            #expect(!reason.isEmpty)
            let receipts = try await node.createVMs(vms, requestID: "r1", checkIndex: plan.placementIndex)
            #expect(receipts.map { $0.subject?["actual_state"]?.stringValue } == ["scheduled", "unschedulable"])
            #expect(receipts[1].subject?["reason"]?.stringValue == reason)
        }
    }

    @Test("a check index beyond the log is refused, saying so, and nothing is written")
    func checkIndexBeyondTheLog() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            let last = node.log.lastIndex
            let refusal = await #expect(throws: NodeError.self) {
                try await node.createVMs([Self.vm("web-1")], requestID: nil, checkIndex: last + 50)
            }
            #expect(refusal?.code == .invalid)
            #expect(refusal?.message.contains("is beyond the log") == true, "\(String(describing: refusal))")
            #expect(node.log.lastIndex == last)
        }
    }

    /// In a region whose n3 holds committed entries back (a long follower apply delay): hosts a
    /// (8 CPUs) and b (4), which n3 applies, then VM x (6 CPUs) on a, which n3 holds back.
    /// Returns the leader (never n3) and n3.
    static func laggingFollower(_ nodes: [Node]) async throws -> (leader: Node, n3: Node) {
        let n3 = nodes[2]
        // (Tried again: on a loaded machine a hand-off can miss its 5 s, and n3 then still leads.)
        for _ in 0..<3 where n3.raft!.isLeader {
            _ = try? await n3.raft!.moveLeadership(to: "n1", timeout: .seconds(5))
        }
        try #require(!n3.raft!.isLeader, "n3 kept the leadership through three hand-offs")
        // (Once n3 stepped down, another may take a moment to be elected.)
        _ = try await waitUntil { nodes.contains { $0.raft!.isLeader } }
        let leader = try #require(nodes.first { $0.raft!.isLeader })
        _ = try await leader.submit(host("a"))
        _ = try await leader.submit(host("b", cpus: 4))
        _ = try await n3.waitUntilApplied(leader.log.lastIndex)
        _ = try await leader.createVMs([vm("x", cpus: 6)], requestID: nil, checkIndex: nil)
        return (leader, n3)
    }

    @Test(
        "a batch with a check index sent to a follower that holds entries back places as the plan did: it waits for its views to reach the index"
    )
    func checkIndexOnALaggingFollower() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir, applyDelays: ["n3": .seconds(60)]) { nodes, _ in
            let (leader, n3) = try await Self.laggingFollower(nodes)
            let plan = try await leader.plan([Self.vm("y", cpus: 4)])
            let planned = try #require(plan.decisions[0].decision.host)
            #expect(planned == "b", "x took most of a")
            #expect(n3.applied.value < plan.placementIndex, "n3 applied x's placement already")
            let receipts = try await n3.createVMs(
                [Self.vm("y", cpus: 4)], requestID: nil, checkIndex: plan.placementIndex)
            // Placed in the batch itself, as planned (not refused there and placed later by the
            // scheduler: the answer's row was read right after the batch applied).
            #expect(receipts.count == 1)
            #expect(
                receipts.first?.subject?["host"] == .string(planned), "\(String(describing: receipts.first?.subject))")
        }
    }

    @Test("plan, explain and rebalance on a lagging follower see every acknowledged intent unless asked for local")
    func plansOnALaggingFollowerAreLinearizable() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir, applyDelays: ["n3": .seconds(60)]) { nodes, _ in
            let (_, n3) = try await Self.laggingFollower(nodes)
            // n3 holds back x and its placement: its own views still have both hosts empty.
            let stale = try await n3.plan([Self.vm("y", cpus: 4)], consistency: .local)
            #expect(stale.decisions[0].decision.host == "a")
            await #expect(throws: NodeError.self) { try await n3.explain(vm: "x", consistency: .local) }
            let localMoves = try await n3.rebalancePlan(region: nil, consistency: .local)
            #expect(localMoves["hosts_in_use"] == .int(0))
            // Asked as a read of what was acknowledged (the default), it catches up first.
            let fresh = try await n3.plan([Self.vm("y", cpus: 4)])
            #expect(fresh.decisions[0].decision.host == "b", "x took most of a")
            #expect(try await n3.explain(vm: "x")["host"] == .string("a"))
            #expect(try await n3.rebalancePlan(region: nil)["hosts_in_use"] == .int(1))
        }
    }

    @Test("--count creates NAME-1 … NAME-N in one batch; hard anti-affinity keeps them apart")
    func countAndAntiAffinity() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            for name in ["a", "b", "c"] { _ = try await node.submit(Self.host(name)) }
            let vms = (1...4).map { Self.vm("web-\($0)", group: "web", antiAffinity: "hard") }
            let receipts = try await node.createVMs(vms, requestID: "batch", checkIndex: nil)
            #expect(receipts.map(\.logIndex) == [4, 5, 6, 7])
            for _ in 0..<100 {
                if try await rows(node, "SELECT count(*) FROM vms WHERE actual_state = 'pending'") == "[[0]]" { break }
                _ = try await node.applied.wait(until: node.applied.value + 1, timeout: .milliseconds(50))
            }
            #expect(try await rows(node, "SELECT count(DISTINCT host), count(host) FROM vms") == "[[3,3]]")
            #expect(try await rows(node, "SELECT actual_state FROM vms WHERE host IS NULL") == #"[["unschedulable"]]"#)
            let again = try await node.createVMs(vms, requestID: "batch", checkIndex: nil)
            #expect(again.allSatisfy { $0.outcome == "duplicate" })
        }
    }

    @Test(
        "a batch whose request id another batch took meanwhile is refused, not answered as a duplicate of VMs it did not create"
    )
    func batchRequestIDTakenMeanwhile() async throws {
        let dir = TemporaryDirectory()
        // Another client's batch under the same request id commits just before this one.
        let others = (1...2).map { i in
            var vm = Self.vm("other-\(i)")
            vm.region = "eu"
            vm.image = "builtin:hello"
            return Record(at: 1, requestID: "batch#\(i)", .vmCreated(vm)).encoded()
        }
        try await withRunningNode(dir, consensus: { ProposingTwice(log: $0, committedFirst: others) }) { node in
            await #expect {
                try await node.createVMs((1...2).map { Self.vm("web-\($0)") }, requestID: "batch", checkIndex: nil)
            } throws: { error in
                (error as? NodeError)?.code == .conflict && "\(error)".contains("request id batch")
            }
            let names = try await rows(node, "SELECT name FROM vms ORDER BY name")
            #expect(names == #"[["other-1"],["other-2"]]"#)
        }
    }

    @Test("a batch whose records would pass 4 MiB, or with a malformed request id, is refused and writes nothing")
    func oversizedBatch() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            let before = node.log.lastIndex
            // 64 labels of 253 bytes (about 17 KiB a VM, copied into each record) on 300 VMs.
            let labels = Dictionary(
                uniqueKeysWithValues: (1...64).map { ("key\($0)", String(repeating: "v", count: 253)) })
            let vms = (1...300).map {
                VMCreated(name: "big-\($0)", region: "", cpus: 1, memoryBytes: 64 << 20, image: "", labels: labels)
            }
            await #expect {
                try await node.createVMs(vms, requestID: "big", checkIndex: nil)
            } throws: { error in
                (error as? NodeError)?.code == .invalid && "\(error)".contains("more than 4 MiB")
            }
            for id in ["", String(repeating: "r", count: 129)] {
                await #expect {
                    try await node.createVMs(Array(vms.prefix(2)), requestID: id, checkIndex: nil)
                } throws: { error in
                    (error as? NodeError)?.code == .invalid && "\(error)".contains("invalid request id")
                }
            }
            #expect(node.log.lastIndex == before)
            // The same VMs in smaller batches go in.
            let receipts = try await node.createVMs(Array(vms.prefix(200)), requestID: "smaller", checkIndex: nil)
            #expect(receipts.count == 200)
        }
    }

    @Test("a batch with a request id the node proposed twice is answered as applied, at the first copies")
    func batchProposedTwice() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir, consensus: { ProposingTwice(log: $0) }) { node in
            _ = try await node.submit(Self.host("a"))
            let vms = (1...2).map { Self.vm("web-\($0)") }
            let receipts = try await node.createVMs(vms, requestID: "batch", checkIndex: nil)
            #expect(receipts.map(\.outcome) == ["applied", "applied"])
            #expect(receipts.map(\.logIndex) == [2, 3])
            // Both copies are in the log: the second applied as duplicates of the first.
            #expect(
                try await rows(
                    node, "SELECT log_index, outcome FROM intents WHERE request_id LIKE 'batch#%' ORDER BY 1")
                    == #"[[2,"applied"],[3,"applied"],[4,"duplicate"],[5,"duplicate"]]"#)
            // A batch that places its VMs itself (planned, with a check index) goes once.
            for _ in 0..<100 {
                if try await rows(node, "SELECT count(*) FROM vms WHERE actual_state = 'pending'") == "[[0]]" { break }
                _ = try await node.applied.wait(until: node.applied.value + 1, timeout: .milliseconds(50))
            }
            let plan = try await node.plan([Self.vm("db-1")])
            let planned = try await node.createVMs(
                [Self.vm("db-1")], requestID: "planned", checkIndex: plan.placementIndex)
            #expect(planned.map(\.outcome) == ["applied"])
            #expect(try await rows(node, "SELECT count(*) FROM intents WHERE request_id = 'planned'") == "[[1]]")
        }
    }

    @Test("relabelling a host places the VMs that were waiting for that label; explain says why")
    func labelsAndExplain() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            _ = try await node.submit(.createVM(Self.vm("db", require: ["disk": "ssd"])))
            #expect(try await rows(node, "SELECT actual_state FROM vms") == #"[["unschedulable"]]"#)
            let unplaced = try await node.explain(vm: "db")
            #expect(unplaced.serialized().contains(#""labels":1"#))
            _ = try await node.submit(.setHostLabels(name: "a", labels: ["disk": "ssd"]))
            for _ in 0..<100 {
                if try await rows(node, "SELECT host FROM vms") == #"[["a"]]"# { break }
                _ = try await node.applied.wait(until: node.applied.value + 1, timeout: .milliseconds(50))
            }
            #expect(try await rows(node, "SELECT host FROM vms") == #"[["a"]]"#)
            let placed = try await node.explain(vm: "db").serialized()
            #expect(
                placed.contains(#""host":"a""#) && placed.contains(#""candidates":[{"#)
                    && placed.contains(#""policy":"binpack""#))
        }
    }

    @Test("a host that changes only the counts in a waiting VM's reason writes nothing for it")
    func waitingVMsAreNotRewrittenForCounts() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            _ = try await node.submit(.createVM(Self.vm("db", require: ["disk": "ssd"])))
            let events = "SELECT count(*) FROM vm_events WHERE vm = 'db'"
            let before = try await rows(node, events)
            // Another host without the label, then a VM that is placed: once it is, the
            // scheduler has looked at db again too.
            _ = try await node.submit(Self.host("b"))
            _ = try await node.submit(.createVM(Self.vm("web")))
            #expect(try await rows(node, "SELECT count(*) FROM vms WHERE name = 'web' AND host IS NOT NULL") == "[[1]]")
            // (Each host added or gone wrote every waiting VM again, for its counts alone.)
            #expect(try await rows(node, events) == before)
            #expect(
                try await rows(node, "SELECT reason FROM vms WHERE name = 'db'").contains(
                    "of 1 host: 1 without the labels"))
            // Given the label, b takes db.
            _ = try await node.submit(.setHostLabels(name: "b", labels: ["disk": "ssd"]))
            for _ in 0..<100 {
                if try await rows(node, "SELECT host FROM vms WHERE name = 'db'") == #"[["b"]]"# { break }
                _ = try await node.applied.wait(until: node.applied.value + 1, timeout: .milliseconds(50))
            }
            #expect(try await rows(node, "SELECT host FROM vms WHERE name = 'db'") == #"[["b"]]"#)
        }
    }

    @Test("rebalance proposes emptying a host whose VMs fit elsewhere, and writes nothing")
    func rebalance() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            _ = try await node.submit(.createVM(Self.vm("v1")))
            _ = try await node.submit(Self.host("b"))
            // Spread puts v2 on the empty host b, leaving two half-empty hosts.
            var spread = Self.vm("v2")
            spread.placementPolicy = "spread"
            _ = try await node.submit(.createVM(spread))
            #expect(try await rows(node, "SELECT count(DISTINCT host) FROM vms") == "[[2]]")
            let before = node.log.lastIndex
            let plan = try await node.rebalancePlan(region: "eu").serialized()
            #expect(plan.contains(#""hosts_in_use":2,"hosts_in_use_after":1"#))
            #expect(plan.contains(#""reason":"empty host"#))
            #expect(node.log.lastIndex == before)
            // Another region's plan is not this node's to make (its views hold none of its hosts).
            await #expect {
                try await node.rebalancePlan(region: "us")
            } throws: { "\($0)".contains("this node serves region eu, not us") }
        }
    }

    @Test("a rebalance that repairs soft anti-affinity counts the empty host it takes into use")
    func rebalanceIntoAnEmptyHost() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("a"))
            // One host only: the group's two VMs share it, as soft anti-affinity allows.
            for name in ["api-1", "api-2"] {
                _ = try await node.submit(.createVM(Self.vm(name, group: "api", antiAffinity: "soft")))
            }
            _ = try await node.submit(Self.host("b"))
            let plan = try await node.rebalancePlan(region: nil).serialized()
            #expect(plan.contains(#""to":"b""#), "\(plan)")
            // (It said 1 -> 1: only the hosts the moves empty were counted.)
            #expect(plan.contains(#""hosts_in_use":1,"hosts_in_use_after":2"#), "\(plan)")
        }
    }
}

@Suite struct ApplierPropertyTests {
    /// Random records, including placements that do not fit, applied in random batches: the views
    /// never show a host over its capacity, and each host's use equals the sum of its VMs.
    @Test("no host is ever oversubscribed, whatever sequence of records is applied")
    func neverOversubscribed() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let dir = TemporaryDirectory()
            let views = try ViewStore(path: dir.file("views.sqlite"))
            var index: UInt64 = 0
            for _ in 0..<40 {
                var batch: [LogEntry] = []
                for _ in 0..<Int.random(in: 1...10, using: &rng) {
                    let h = "h\(Int.random(in: 0..<4, using: &rng))"
                    let v = "v\(Int.random(in: 0..<20, using: &rng))"
                    let body: Record.Body
                    switch Int.random(in: 0..<10, using: &rng) {
                    case 0:
                        body = .hostAdded(
                            HostAdded(
                                name: h, region: "eu", cpus: Int.random(in: 1...8, using: &rng), memoryBytes: 8 << 30))
                    case 1: body = .hostRemoved(HostRemoved(name: h))
                    case 2, 3:
                        body = .vmCreated(
                            VMCreated(
                                name: v, region: "eu", cpus: Int.random(in: 1...4, using: &rng),
                                memoryBytes: Int64.random(in: 1...4, using: &rng) << 30, image: "builtin:hello"))
                    case 4: body = .vmDeleted(VMDeleted(name: v))
                    default: body = .vmPlaced(VMPlaced(vm: v, host: h, explanation: "{}"))
                    }
                    index += 1
                    batch.append(LogEntry(index: index, term: 1, payload: Record(at: 0, body).encoded()))
                }
                try views.apply(batch)
                let violations = try views.pool.read { db in
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT count(*) FROM hosts h WHERE h.cpus_used > h.cpus OR h.memory_used_bytes > h.memory_bytes
                            OR h.cpus_used <> (SELECT coalesce(sum(cpus), 0) FROM vms WHERE host = h.name)
                            OR h.memory_used_bytes <> (SELECT coalesce(sum(memory_bytes), 0) FROM vms WHERE host = h.name)
                            """) ?? -1
                }
                #expect(violations == 0)
                let orphans = try views.pool.read { db in
                    try Int.fetchOne(
                        db,
                        sql: "SELECT count(*) FROM vms WHERE host IS NOT NULL AND host NOT IN (SELECT name FROM hosts)")
                        ?? -1
                }
                #expect(orphans == 0)
            }
        }
    }
}

@Suite struct PlacementDeterminismTests {
    @Test("every node computes the same placement from the same log")
    func sameLogSamePlacement() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            for (i, cpus) in [8, 16, 4, 8, 32].enumerated() {
                _ = try await node.submit(
                    .addHost(
                        HostAdded(
                            name: "h\(i)", region: "eu", cpus: cpus, memoryBytes: Int64(cpus) << 31,
                            labels: ["i": "\(i % 2)"])))
            }
            var vms: [VMCreated] = []
            for i in 0..<12 {
                var vm = VMCreated(
                    name: "vm-\(i)", region: "", cpus: 1 + i % 3, memoryBytes: Int64(1 + i % 4) << 30, image: "")
                vm.group = "g\(i % 3)"
                vm.antiAffinity = i % 2 == 0 ? "soft" : nil
                vms.append(vm)
            }
            _ = try await node.createVMs(vms, requestID: nil, checkIndex: nil)
        }
        // Two replicas that only share the log: their views are rebuilt from it independently.
        var answers: [[String?]] = []
        for replica in ["r1", "r2"] {
            let copy = dir.file(replica)
            try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dir.file("log"), toPath: copy + "/log")
            let node = try Node(
                configuration: NodeConfiguration(dataDirectory: copy, nodeID: replica, region: "eu"),
                logger: .init(label: replica))
            #expect(node.views.rebuildReason == "views.sqlite is missing")
            let inputs = try await node.views.pool.read { db in
                try PlacementInputs.read(db, waitingStates: [], includePlaced: false, labels: LabelsCache())
            }
            let requests = (0..<6).map {
                PlacementRequest(
                    vm: "new-\($0)", region: "eu", cpus: 1 + $0 % 2, memoryBytes: 1 << 30, group: "g1",
                    antiAffinity: .soft)
            }
            answers.append(Placer().placeBatch(requests, on: inputs.hosts).map(\.host))
        }
        #expect(answers[0] == answers[1])
        #expect(answers[0].allSatisfy { $0 != nil })
    }
}
