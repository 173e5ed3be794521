import Foundation
import GRDB
import Scheduler
import Store

/// What placement needs from the views: hosts with their use, labels and groups; the VMs waiting
/// for a host; the VMs placed. Every value is `Sendable`, so async GRDB reads never block.
struct PlacementInputs: Sendable {
    var hosts: [HostCapacity]
    var waiting: [WaitingVM]
    var placed: [PlacedVM]
    var appliedIndex: UInt64
    /// The last index that changed anything placement depends on: unschedulable VMs are retried
    /// when it moves, and `--check-index` compares against it.
    var placementIndex: UInt64

    struct WaitingVM: Sendable {
        var request: PlacementRequest
        var actualState: String
        var reason: String
        /// The index of its `vm.created` record: which VM of that name a placement is for.
        var createdIndex: UInt64
    }

    struct PlacedVM: Sendable {
        var request: PlacementRequest
        var host: String
    }

    static let vmColumns =
        "name, region, cpus, memory_bytes, group_name, anti_affinity, affinity_group, required_labels, placement_policy"

    static func request(_ row: Row) -> PlacementRequest {
        PlacementRequest(
            vm: row["name"], region: row["region"], cpus: row["cpus"], memoryBytes: row["memory_bytes"],
            requiredLabels: labels(row["required_labels"]), group: row["group_name"],
            antiAffinity: (row["anti_affinity"] as String?).flatMap(AntiAffinity.init(rawValue:)),
            affinityGroup: row["affinity_group"],
            policy: (row["placement_policy"] as String?).flatMap(PlacementPolicy.init(rawValue:)) ?? .binpack)
    }

    /// A labels column (a JSON object) as a dictionary; values that are not strings are left out.
    static func labels(_ json: String?) -> [String: String] {
        guard let json, let data = json.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object.compactMapValues { $0 as? String }
    }

    /// Reads the inputs in one read transaction. `waitingStates` picks which unplaced VMs count;
    /// the placed VMs (every running VM) are read only when `includePlaced` asks for them.
    /// `labels` keeps the hosts' parsed labels between reads: parsing every host's JSON again
    /// was a fifth of a scheduler round on 10,000 hosts.
    static func read(_ db: Database, waitingStates: [String], includePlaced: Bool, labels: LabelsCache)
        throws -> PlacementInputs
    {
        var groupsByHost: [String: [String: Int]] = [:]
        var countByHost: [String: Int] = [:]
        let counts = try Row.fetchCursor(
            db, sql: "SELECT host, group_name, count(*) AS n FROM vms WHERE host IS NOT NULL GROUP BY host, group_name")
        while let row = try counts.next() {
            let host: String = row[0]
            let n: Int = row[2]
            countByHost[host, default: 0] += n
            if let group: String = row[1] { groupsByHost[host, default: [:]][group] = n }
        }
        // Columns by position: looking each up by name lowercases the name every time.
        var hosts: [HostCapacity] = []
        let hostRows = try Row.fetchCursor(
            db,
            sql:
                "SELECT name, region, state, cpus, memory_bytes, cpus_used, memory_used_bytes, labels FROM hosts ORDER BY name"
        )
        while let row = try hostRows.next() {
            let name: String = row[0]
            hosts.append(
                HostCapacity(
                    name: name, region: row[1], state: row[2], cpus: row[3], memoryBytes: row[4], cpusUsed: row[5],
                    memoryUsedBytes: row[6], labels: labels.parsed(row[7]), groups: groupsByHost[name] ?? [:],
                    vmCount: countByHost[name] ?? 0))
        }
        let states = waitingStates.map { "'\($0)'" }.joined(separator: ",")
        let waiting = try Row.fetchAll(
            db,
            sql:
                "SELECT \(vmColumns), actual_state, reason, created_index FROM vms WHERE host IS NULL AND actual_state IN (\(states)) ORDER BY created_index"
        ).map {
            WaitingVM(
                request: request($0), actualState: $0["actual_state"], reason: $0["reason"],
                createdIndex: try ViewStore.logIndex($0["created_index"], "vms.created_index"))
        }
        let placed =
            includePlaced
            ? try Row.fetchAll(db, sql: "SELECT \(vmColumns), host FROM vms WHERE host IS NOT NULL ORDER BY name")
                .map { PlacedVM(request: request($0), host: $0["host"]) } : []
        let state = try Row.fetchOne(db, sql: "SELECT applied_index, placement_index FROM dwcp_state WHERE id = 1")
        return PlacementInputs(
            hosts: hosts, waiting: waiting, placed: placed,
            appliedIndex: try ViewStore.logIndex(state?["applied_index"] ?? 0, "dwcp_state.applied_index"),
            placementIndex: try ViewStore.logIndex(state?["placement_index"] ?? 0, "dwcp_state.placement_index"))
    }
}

/// Where VMs would go, computed at an applied index, without writing anything.
public struct PlacementPlan: Sendable {
    public var appliedIndex: UInt64
    public var placementIndex: UInt64
    public var decisions: [(vm: String, decision: PlacementDecision)]

    public var json: JSONValue {
        .object([
            ("applied_index", .int(Int64(appliedIndex))),
            ("placement_index", .int(Int64(placementIndex))),
            ("decisions", .array(decisions.map { Node.decisionJSON(vm: $0.vm, $0.decision) })),
        ])
    }
}

extension Node {
    /// ``PlacementInputs/read(_:waitingStates:includePlaced:labels:)`` on a reader of the views,
    /// with this node's ``labelsCache``. Not before the views' values are known to be ones the
    /// applier writes (the check as the node starts): a plan or a rebalance asked in its first
    /// moments would otherwise stop the process on a damaged file's first odd value.
    func placementInputs(waitingStates: [String], includePlaced: Bool) async throws -> PlacementInputs {
        _ = try await snapshots.viewsChecked.wait(until: 1)
        let labels = labelsCache
        return try await views.pool.read { db in
            try PlacementInputs.read(db, waitingStates: waitingStates, includePlaced: includePlaced, labels: labels)
        }
    }

    /// The placement request a `vm.created` record makes.
    static func request(_ vm: VMCreated) -> PlacementRequest {
        PlacementRequest(
            vm: vm.name, region: vm.region, cpus: vm.cpus, memoryBytes: vm.memoryBytes,
            requiredLabels: vm.requiredLabels,
            group: vm.group, antiAffinity: vm.antiAffinity.flatMap(AntiAffinity.init(rawValue:)),
            affinityGroup: vm.affinityGroup,
            policy: vm.placementPolicy.flatMap(PlacementPolicy.init(rawValue:)) ?? .binpack)
    }

    static func decisionJSON(vm: String, _ decision: PlacementDecision) -> JSONValue {
        .object([
            ("vm", .string(vm)), ("host", decision.host.map { .string($0) } ?? .null),
            ("reason", .string(decision.reason)),
            ("explanation", (try? JSONValue.parse(decision.explanation.json)) ?? .null),
        ])
    }

    /// Validates VMs as `vm create` would, and computes where they would go now. Writes nothing.
    public func plan(_ vms: [VMCreated], consistency: ReadConsistency = .linearizable) async throws -> PlacementPlan {
        let validated = try vms.map(validate)
        try Self.requireDistinctNames(validated)
        try await waitForViews(consistency)
        // Refused as creating them would be: a plan for a name taken names a command that fails.
        // (A lookup per VM: a large batch's on NIO's thread pool, as creating it does.)
        try await Self.compute(inline: validated.count <= Self.inlineBatchVMs) { [self] in
            for vm in validated { try checkAgainstViews(.createVM(vm)) }
        }
        return try await plan(validated: validated)
    }

    /// ``plan(_:)`` for VMs already validated.
    private func plan(validated: [VMCreated]) async throws -> PlacementPlan {
        let inputs = try await placementInputs(waitingStates: [], includePlaced: false)
        let decisions = try await Self.placeBatch(validated.map(Self.request), on: inputs.hosts)
        return PlacementPlan(
            appliedIndex: inputs.appliedIndex, placementIndex: inputs.placementIndex,
            decisions: zip(validated, decisions).map { ($0.name, $1) })
    }

    /// Creates VMs in one committed batch. With `checkIndex`, nothing is written unless nothing
    /// placement depends on changed after that index, and the VMs are placed exactly as planned,
    /// in the same batch.
    public func createVMs(_ vms: [VMCreated], requestID: String?, checkIndex: UInt64?) async throws -> [IntentReceipt] {
        if vms.count == 1 && checkIndex == nil { return [try await submit(.createVM(vms[0]), requestID: requestID)] }
        // A VM refused when its turn came does not undo the others: each is counted as it ended.
        let (receipts, refusal) = try await measured(
            intents: vms.count,
            outcomes: { $0.receipts.map { $0.outcome == "rejected" ? NodeError.Code.conflict.rawValue : $0.outcome } }
        ) {
            try await createVMsUnmeasured(vms, requestID: requestID, checkIndex: checkIndex)
        }
        if let refusal { throw refusal }
        return receipts
    }

    /// The batch's receipts, or (when a VM was refused at apply time) each VM's outcome without its
    /// row and the error to answer with.
    private func createVMsUnmeasured(_ vms: [VMCreated], requestID: String?, checkIndex: UInt64?) async throws
        -> (receipts: [IntentReceipt], refusal: NodeError?)
    {
        if let checkIndex { try Validation.logIndex(checkIndex, field: "check_index") }
        if let requestID { try Validation.requestID(requestID) }
        let inline = vms.count <= Self.inlineBatchVMs
        if let requestID,
            let receipt = try await Self.compute(
                inline: inline,
                throwing: { [self] in
                    try earlierBatch(requestID: requestID, vms: vms, checkIndex: checkIndex)
                })
        {
            return (receipt, nil)
        }
        let validated = try await checkAgainstLatestViews {
            try await Self.compute(inline: inline) { [self] in
                try vms.map { vm in
                    var v = try validate(vm)
                    try checkAgainstViews(.createVM(v))
                    v.checkIndex = checkIndex
                    return v
                }
            }
        }
        try Self.requireDistinctNames(validated)
        let at = Self.now()
        var records = validated.enumerated().map { i, vm in
            Record(at: at, requestID: requestID.map { vms.count == 1 ? $0 : "\($0)#\(i + 1)" }, .vmCreated(vm))
                .encoded()
        }
        let bytes = records.reduce(0) { $0 + $1.count }
        guard bytes <= Validation.maxBatchBytes else {
            throw NodeError(
                .invalid,
                "the batch would write \(bytes) bytes to the log, more than \(Validation.maxBatchBytes >> 20) MiB: create fewer VMs at once, or give them fewer labels"
            )
        }
        if let checkIndex {
            // The plan is made from this member's views, which must hold everything up to the
            // checked index: a follower behind it (or holding committed entries back) would plan
            // from older views, and place elsewhere than the plan that was checked.
            try await requireApplied(checkIndex: checkIndex)
            let plan = try await self.plan(validated: validated)
            guard plan.placementIndex <= checkIndex else {
                throw NodeError(
                    .conflict,
                    "placement inputs changed at log index \(plan.placementIndex), after the checked index \(checkIndex); nothing was written: plan again"
                )
            }
            // Each placement names its VM by where the VM's creation sits in this batch; a VM the
            // plan found no host for is marked unschedulable in it too, with the plan's reason.
            for (position, (vm, decision)) in plan.decisions.enumerated() {
                guard let host = decision.host else {
                    records.append(
                        Record(
                            at: at,
                            .vmUnschedulable(
                                VMUnschedulable(
                                    vm: vm, reason: decision.reason, explanation: decision.explanation.json,
                                    createdBefore: UInt64(records.count - position)))
                        ).encoded())
                    continue
                }
                let placed = VMPlaced(
                    vm: vm, host: host, explanation: decision.explanation.json,
                    createdBefore: UInt64(records.count - position))
                records.append(Record(at: at, .vmPlaced(placed)).encoded())
            }
        }
        // A batch of VMs with a request id (and no placements of its own) applies once however
        // often it is proposed, so it may be carried through a change of leader.
        let range = try await consensus.propose(records, appliesOnce: requestID != nil && checkIndex == nil)
        try await waitUntilApplied(range.upperBound)
        let applied = try outcomes(range.lowerBound...(range.lowerBound + UInt64(validated.count) - 1))
        let results = try zip(applied, records).enumerated().map { offset, pair in
            try ownFirstCopy(of: pair.1, answered: pair.0)
                ?? (range.lowerBound + UInt64(offset), pair.0.outcome, pair.0.error)
        }
        // A duplicate that is not this batch's own first copy: another submission under the same
        // request id got in first. As for one intent, a concurrent retry of this batch is answered
        // with it, and another batch's use of the id is refused (409), never answered "duplicate"
        // for VMs this request did not create.
        if let requestID, results.contains(where: { $0.outcome == "duplicate" }) {
            if let earlier = try earlierBatch(requestID: requestID, vms: vms, checkIndex: checkIndex) {
                return (earlier, nil)
            }
            throw NodeError(
                .conflict,
                "request id \(requestID) was used meanwhile by another submission for part of this batch; nothing of this one applied where it was: use a new request id"
            )
        }
        for (vm, result) in zip(validated, results) where result.outcome == "rejected" {
            let outcomes = results.map { IntentReceipt(logIndex: $0.index, outcome: $0.outcome, subject: nil) }
            return (outcomes, NodeError(.conflict, "\(result.error) (VM \(vm.name), log index \(result.index))"))
        }
        if checkIndex == nil, let last = validated.last {
            try await waitForPlacement(vm: last.name, after: range.upperBound)
        }
        let names = validated.map(\.name)
        let vmRows = try await Self.compute(inline: inline) { [self] in try rows(.vms, names) }
        let receipts = zip(results, vmRows).map { IntentReceipt(logIndex: $0.index, outcome: $0.outcome, subject: $1) }
        return (receipts, nil)
    }

    /// Waits, up to ``checkIndexWait``, until this member's views hold entry `checkIndex`; throws
    /// when they do not: the index is beyond the log (no plan gave it), or this member is behind
    /// or cut off.
    func requireApplied(checkIndex: UInt64) async throws {
        guard try await waitUntilApplied(checkIndex, timeout: Self.checkIndexWait) == nil else { return }
        let committed = consensus.committed.value
        guard checkIndex > committed else {
            throw NodeError(
                .unavailable,
                "\(configuration.nodeID) has not applied log index \(checkIndex) within \(Self.checkIndexWait): nothing was written; try again, or send it to the leader"
            )
        }
        throw NodeError(
            .invalid,
            "check_index \(checkIndex) is beyond the log (\(configuration.nodeID) knows it to index \(committed)): pass the index a plan gave (dwcp plan vm create); nothing was written"
        )
    }

    /// Refuses a batch that names a VM twice (planned or created).
    static func requireDistinctNames(_ vms: [VMCreated]) throws {
        guard Set(vms.map(\.name)).count == vms.count else { throw NodeError(.invalid, "the batch names a VM twice") }
    }

    /// How long a batch with a check index waits for this member's views to reach it.
    static let checkIndexWait: Duration = .seconds(2)

    private func earlierBatch(requestID: String, vms: [VMCreated], checkIndex: UInt64?) throws -> [IntentReceipt]? {
        let count = vms.count
        let ids = (1...count).map { count == 1 ? requestID : "\(requestID)#\($0)" }
        typealias Earlier = (index: Int64, kind: String, subject: String, payload: String)
        let (earlier, batch, single): ([Earlier?], (index: Int64, vms: Int)?, Earlier?) = try views.read { db in
            func earlierIntent(_ id: String) throws -> Earlier? {
                try Self.originalIntent(requestID: id, db).map {
                    ($0["log_index"], $0["kind"], $0["subject"], $0["payload"])
                }
            }
            let earlier = try ids.map(earlierIntent)
            // Another use of the id as a whole: a batch of another size, or one intent (for a
            // batch of more than one, whose VMs take `requestID#1`, …).
            let single = try count == 1 ? nil : earlierIntent(requestID)
            return (earlier, try Self.batchUse(of: requestID, db), single)
        }
        let asked = count == 1 ? "vm.create \(vms[0].name)" : "a batch of \(count) VM creations"
        if let batch, batch.vms != count || count == 1 {
            throw Self.usedForBatch(requestID, batch, not: asked)
        }
        if let single {
            throw NodeError(
                .conflict,
                "request id \(requestID) was used at log index \(single.index) for \(single.kind) \(single.subject), not \(asked): use a new request id"
            )
        }
        guard earlier.contains(where: { $0 != nil }) else { return nil }
        // (As for one intent: an id used before for another intent is a mistake, not a retry;
        // compared as logged, defaults filled in.)
        for (intent, vm) in zip(earlier, vms) {
            guard let intent else { continue }
            var logged = try validate(vm)
            logged.checkIndex = checkIndex
            try Self.checkSameIntent(requestID, earlier: intent, body: .vmCreated(logged))
        }
        let found = earlier.compactMap { $0 }
        guard found.count == count else { return nil }
        let vmRows = try rows(.vms, found.map(\.subject))
        return zip(found, vmRows).map {
            IntentReceipt(logIndex: UInt64($0.0.index), outcome: "duplicate", subject: $0.1)
        }
    }

    /// A VM's latest scheduling decision, for `dwcp vm explain`.
    public func explain(vm name: String, consistency: ReadConsistency = .linearizable) async throws -> JSONValue {
        try Validation.name(name, what: "VM")
        try await waitForViews(consistency)
        let row: (String?, String, String, String, Int64?)? = try await views.pool.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT v.host, v.actual_state, v.reason, v.explanation,
                           (SELECT max(log_index) FROM placements p
                            WHERE p.vm = v.name AND p.log_index > v.created_index) AS placed_index
                    FROM vms v WHERE v.name = ?
                    """, arguments: [name]
            ).map { ($0["host"], $0["actual_state"], $0["reason"], $0["explanation"], $0["placed_index"]) }
        }
        guard let (host, state, reason, explanation, placedIndex) = row else {
            throw NodeError(.notFound, "no VM named \(name)")
        }
        return .object([
            ("vm", .string(name)), ("host", host.map { .string($0) } ?? .null), ("actual_state", .string(state)),
            ("reason", .string(reason)), ("placed_index", placedIndex.map { .int($0) } ?? .null),
            ("explanation", (try? JSONValue.parse(explanation)) ?? .null),
        ])
    }

    /// Migrations that would reduce the hosts in use or repair soft anti-affinity. Writes nothing.
    public func rebalancePlan(region: String?, consistency: ReadConsistency = .linearizable) async throws -> JSONValue {
        if let region {
            try Validation.name(region, what: "region")
            // Its views hold its own region's hosts only: for another, an empty plan would mislead.
            guard region == configuration.region else {
                throw NodeError(
                    .invalid,
                    "this node serves region \(configuration.region), not \(region): ask a node of region \(region) for its plan"
                )
            }
        }
        try await waitForViews(consistency)
        let inputs = try await placementInputs(waitingStates: [], includePlaced: true)
        let hosts = inputs.hosts
        let placed = inputs.placed.map { ($0.request, $0.host) }
        let small = placed.count * hosts.count <= Self.inlineRebalanceEvaluations
        let moves = try await Self.compute(inline: small) {
            Rebalancer().plan(hosts: hosts, placed: placed, region: region)
        }
        // The hosts in use before and after the moves: a move that repairs anti-affinity may take
        // an empty host into use (counting only the hosts emptied said 1 -> 1 for it).
        var vmsAfter: [String: Int] = [:]
        for host in inputs.hosts where region == nil || host.region == region { vmsAfter[host.name] = host.vmCount }
        let inUseBefore = vmsAfter.values.count { $0 > 0 }
        for move in moves {
            vmsAfter[move.from, default: 0] -= 1
            vmsAfter[move.to, default: 0] += 1
        }
        return .object([
            ("applied_index", .int(Int64(inputs.appliedIndex))),
            ("hosts_in_use", .int(Int64(inUseBefore))),
            ("hosts_in_use_after", .int(Int64(vmsAfter.values.count { $0 > 0 }))),
            (
                "moves",
                .array(
                    moves.map { m in
                        .object([
                            ("vm", .string(m.vm)), ("from", .string(m.from)), ("to", .string(m.to)),
                            ("reason", .string(m.reason)), ("gain", .string(m.gain)),
                        ])
                    })
            ),
        ])
    }
}
