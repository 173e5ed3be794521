import GRDB
import Metrics
import Scheduler
import Store

/// What the node answers once an intent has been applied.
public struct IntentReceipt: Sendable {
    /// The log index of the intent (for a retried request, the index of the original).
    public var logIndex: UInt64
    /// `applied`, or `duplicate` when the request id had been applied before.
    public var outcome: String
    /// The host or VM row after the intent (nil once deleted).
    public var subject: JSONValue?
}

extension Node {
    /// Validates an intent, proposes it, waits until the views have applied it and reports what it
    /// did. An intent that fails validation writes nothing. With a request id that was applied
    /// before, nothing is proposed and the original outcome is returned.
    public func submit(_ intent: Intent, requestID: String? = nil) async throws -> IntentReceipt {
        try await measured(intents: 1, outcomes: { [$0.outcome] }) {
            try await submitUnmeasured(intent, requestID: requestID)
        }
    }

    /// Runs a request of `count` intents and reports it: its time, answered or failed, and how each
    /// intent ended (`outcomes` of the result; on an error, the error's code for every intent).
    func measured<T>(intents count: Int, outcomes: (T) -> [String], _ body: () async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        intentsInFlight.withLock { $0 += 1 }
        defer {
            intentsInFlight.withLock { $0 -= 1 }
            metrics.intentDuration.record(duration: started.duration(to: .now))
        }
        do {
            let result = try await body()
            for outcome in outcomes(result) { metrics.countIntent(outcome) }
            return result
        } catch {
            let outcome = (error as? NodeError)?.code.rawValue ?? "error"
            for _ in 0..<count { metrics.countIntent(outcome) }
            throw error
        }
    }

    private func submitUnmeasured(_ intent: Intent, requestID: String?) async throws -> IntentReceipt {
        // (Validated first: a retry is compared with the original as it was logged, defaults filled in.)
        let intent = try validate(intent)
        if let requestID {
            try Validation.requestID(requestID)
            if let receipt = try earlierReceipt(requestID: requestID, intent: intent) { return receipt }
        }
        try await checkAgainstLatestViews { try checkAgainstViews(intent) }
        if case .evacuateHost(let host) = intent { try await requireEvacuationKnown(host: host) }
        let record = Record(at: Self.now(), requestID: requestID, intent.body)
        let payload = record.encoded()
        // The apply loop reads the answer as it applies the entry, asked for where the entry sits
        // (again where it is proposed anew); one applied before the ask is read here instead.
        let request = IntentAnswer.Request(payload: payload, subject: intent.subject)
        var asked: UInt64?
        defer { if let asked { intentAnswers.forget(asked, for: request) } }
        let index = try await consensus.propose([payload], appliesOnce: requestID != nil) { range in
            if let asked { intentAnswers.forget(asked, for: request) }
            asked = range.upperBound
            intentAnswers.want(range.upperBound, request)
        }.upperBound
        try await waitUntilApplied(index)
        let answer: IntentAnswer
        if let taken = intentAnswers.take(index, for: request) {
            answer = taken
        } else {
            // (The row as it stands now, which a later entry may have changed.)
            intentAnswers.noteReadAfterwards()
            answer = try views.read { db in
                let outcome = try Self.outcomes(index...index, db)[0]
                return IntentAnswer(outcome: outcome.outcome, error: outcome.error, row: try intent.subject.read(db))
            }
        }
        switch answer.outcome {
        case "applied":
            return try await appliedReceipt(intent, at: index, subject: answer.row)
        case "duplicate":
            // The original is this very record when the node sent it again after a change of
            // leader (``Consensus/propose(_:appliesOnce:)``) and the first copy applied: to the
            // client, this request applied once, at the first copy's index.
            if let first = try ownFirstCopy(of: payload, answered: (answer.outcome, answer.error)),
                first.outcome == "applied"
            {
                return try await appliedReceipt(intent, at: first.index, subject: answer.row)
            }
            // A concurrent retry of the same request got in first, or this request's first copy
            // was refused when it applied (its conflict is the answer).
            if let requestID, let receipt = try earlierReceipt(requestID: requestID, intent: intent) {
                return receipt
            }
            throw NodeError(.internal, "intent at \(index) is a duplicate but its original is missing")
        default:
            throw NodeError(.conflict, "\(answer.error) (conflict found when applying log index \(index))")
        }
    }

    /// The receipt of an intent that applied at `index`, with the subject's row read after it; a
    /// new VM's row is read again once the scheduler placed it or the wait ran out.
    private func appliedReceipt(_ intent: Intent, at index: UInt64, subject: JSONValue?) async throws -> IntentReceipt {
        guard case .createVM(let vm) = intent else {
            return IntentReceipt(logIndex: index, outcome: "applied", subject: subject)
        }
        try await waitForPlacement(vm: vm.name, after: index)
        return IntentReceipt(logIndex: index, outcome: "applied", subject: try rows(.vms, [vm.name])[0])
    }

    /// For a record that applied as a `duplicate`: when its request id's original is this very
    /// record (the node proposed it again after a change of leader, and the first copy applied),
    /// where and how that first copy ended; nil otherwise.
    func ownFirstCopy(of payload: [UInt8], answered: (outcome: String, error: String)) throws
        -> (index: UInt64, outcome: String, error: String)?
    {
        guard answered.outcome == "duplicate", let requestID = try Store.Record(decoding: payload).requestID,
            let original = try views.read({ try Self.originalIntent(requestID: requestID, $0) })
        else { return nil }
        let index = UInt64(original["log_index"] as Int64)
        guard try isSameRecord(at: index, as: payload) else { return nil }
        return (index, original["outcome"], original["error"])
    }

    /// Whether the log entry at `index` carries exactly `payload`: the same record, submitted at the
    /// same millisecond by the same node (two submissions alike to the byte cannot be told apart,
    /// and are answered alike). False when the entry was compacted away.
    func isSameRecord(at index: UInt64, as payload: [UInt8]) throws -> Bool {
        guard index >= log.firstIndex else { return false }
        return try log.entry(at: index)?.payload == payload
    }

    /// Refuses `requestID` when the intent that used it first (`earlier`, with its logged body as
    /// JSON) is not the one `body` asks for: a request id names one intent; used again for
    /// another (another kind, host or VM, or other fields: other labels, another size), it is a
    /// client's mistake, not a retry, and answering it `duplicate` would say that what it asked
    /// for was done when it was not.
    static func checkSameIntent(
        _ requestID: String, earlier: (index: Int64, kind: String, subject: String, payload: String),
        body: Store.Record.Body
    ) throws {
        let kind = body.intentKind ?? ""
        if earlier.kind != kind || earlier.subject != body.subject {
            throw NodeError(
                .conflict,
                "request id \(requestID) was used at log index \(earlier.index) for \(earlier.kind) \(earlier.subject), not \(kind) \(body.subject): use a new request id"
            )
        }
        let asked = body.json.serialized()
        guard earlier.payload != asked else { return }
        // (Bodies quoted up to 300 characters each: labels can make them long.)
        let (logged, new) = (Validation.shown(earlier.payload, upTo: 300), Validation.shown(asked, upTo: 300))
        throw NodeError(
            .conflict,
            "request id \(requestID) was used at log index \(earlier.index) for \(kind) \(body.subject) with other fields (\(logged), not \(new)): a retry repeats the request as it was; use a new request id for a new one"
        )
    }

    private func earlierReceipt(requestID: String, intent: Intent) throws -> IntentReceipt? {
        let found = try views.read {
            db -> (
                index: Int64, kind: String, subject: String, payload: String, outcome: String, error: String,
                row: JSONValue?
            )? in
            guard let row = try Self.originalIntent(requestID: requestID, db) else {
                if let batch = try Self.batchUse(of: requestID, db) {
                    throw Self.usedForBatch(
                        requestID, batch, not: "\(intent.body.intentKind ?? "") \(intent.body.subject)")
                }
                return nil
            }
            return (
                row["log_index"], row["kind"], row["subject"], row["payload"], row["outcome"], row["error"],
                try intent.subject.read(db)
            )
        }
        guard let found else { return nil }
        let index = UInt64(found.index)
        try Self.checkSameIntent(
            requestID, earlier: (found.index, found.kind, found.subject, found.payload), body: intent.body)
        if found.outcome == "rejected" {
            throw NodeError(.conflict, "\(found.error) (request \(requestID), log index \(index))")
        }
        return IntentReceipt(logIndex: index, outcome: "duplicate", subject: found.row)
    }

    /// ``validate(_:)`` for one VM to create.
    func validate(_ vm: VMCreated) throws -> VMCreated {
        guard case .createVM(let validated) = try validate(.createVM(vm)) else {
            preconditionFailure("validating a VM intent returns a VM intent")
        }
        return validated
    }

    /// Checks the intent's own fields and fills in defaults (region, image).
    func validate(_ intent: Intent) throws -> Intent {
        switch intent {
        case .addHost(let host):
            try Validation.name(host.name, what: "host")
            try Validation.name(host.region, what: "region")
            try requireOwnRegion(host.region, of: "host \(host.name)")
            try Validation.cpus(host.cpus, range: Validation.hostCPURange)
            try Validation.hostMemory(host.memoryBytes)
            try Validation.labels(host.labels)
            return .addHost(host)
        case .removeHost(let name), .evacuateHost(let name):
            try Validation.name(name, what: "host")
            return intent
        case .setHostLabels(let name, let labels):
            try Validation.name(name, what: "host")
            try Validation.labels(labels)
            return intent
        case .createVM(var vm):
            try Validation.name(vm.name, what: "VM")
            if vm.region.isEmpty { vm.region = configuration.region }
            try Validation.name(vm.region, what: "region")
            try requireOwnRegion(vm.region, of: "VM \(vm.name)")
            try Validation.cpus(vm.cpus)
            try Validation.vmMemory(vm.memoryBytes)
            if vm.image.isEmpty { vm.image = Validation.defaultImage }
            try Validation.image(vm.image, memoryBytes: vm.memoryBytes)
            try Validation.labels(vm.labels)
            try Validation.guestLabels(vm.labels)
            try Validation.labels(vm.requiredLabels)
            if let group = vm.group { try Validation.name(group, what: "group") }
            if let group = vm.affinityGroup { try Validation.name(group, what: "affinity group") }
            if let mode = vm.antiAffinity {
                guard AntiAffinity(rawValue: mode) != nil else {
                    throw NodeError(.invalid, "invalid anti-affinity '\(mode)': hard or soft")
                }
                guard vm.group != nil else { throw NodeError(.invalid, "anti-affinity needs a group (--group NAME)") }
            }
            if let policy = vm.placementPolicy, PlacementPolicy(rawValue: policy) == nil {
                throw NodeError(.invalid, "invalid placement policy '\(policy)': binpack or spread")
            }
            return .createVM(vm)
        case .setDesiredState(let name, _), .deleteVM(let name):
            try Validation.name(name, what: "VM")
            return intent
        }
    }

    /// Refuses a host or VM of another region: a region's log holds its own fleet, and nothing
    /// yet carries an intent to the region it names (DESIGN.md's global layer is not built).
    func requireOwnRegion(_ region: String, of subject: String) throws {
        guard region == configuration.region else {
            throw NodeError(
                .invalid,
                "\(subject) is in region \(region), but this node serves region \(configuration.region): send it to a node of region \(region) (dwcp does not route intents between regions yet)"
            )
        }
    }

    /// Runs `check` (``checkAgainstViews(_:)``, for one intent or a batch) as the leader would
    /// answer it. A member that does not lead may not yet have applied what the leader
    /// acknowledged (a host created through the leader a moment ago, which this member's views
    /// still lack for up to its apply delay), so before it refuses it looks again once its views
    /// have caught up with the leader's commit index: a client told an intent applied is never
    /// told by another member that it did not. The apply decides in the end either way.
    func checkAgainstLatestViews<T>(_ check: () async throws -> T) async throws -> T {
        do {
            return try await check()
        } catch let error as NodeError
            where (error.code == .notFound || error.code == .conflict) && raft != nil && !consensus.isLeader
        {
            try await waitForViews(.linearizable)
            return try await check()
        }
    }

    /// Refuses intents the current views already show cannot apply: a taken name, an unknown
    /// host or VM, a host that still has VMs.
    func checkAgainstViews(_ intent: Intent) throws {
        try views.read { db in
            func exists(_ table: String, _ name: String) throws -> Bool {
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM \(table) WHERE name = ?)"), arguments: [name])
                    ?? false
            }
            switch intent {
            case .addHost(let host):
                if try exists("hosts", host.name) { throw NodeError(.conflict, "host \(host.name) already exists") }
            case .setHostLabels(let name, _):
                guard try exists("hosts", name) else { throw NodeError(.notFound, "no host named \(name)") }
            case .removeHost(let name):
                // (Its agent: only a host a host agent runs can be found not ready, and so evacuated.)
                guard
                    let agent = try String.fetchOne(
                        db, sql: "SELECT agent FROM hosts WHERE name = ?", arguments: [name])
                else { throw NodeError(.notFound, "no host named \(name)") }
                let placed = try String.fetchAll(
                    db, sql: "SELECT name FROM vms WHERE host = ? ORDER BY name LIMIT 4", arguments: [name])
                if !placed.isEmpty {
                    let count =
                        try Int.fetchOne(db, sql: "SELECT count(*) FROM vms WHERE host = ?", arguments: [name]) ?? 0
                    let evacuate =
                        agent.isEmpty
                        ? ""
                        : ", or, if the host is down, evacuate it (dwcp host evacuate \(name)) to place them anew elsewhere"
                    throw NodeError(
                        .conflict,
                        "host \(name) has \(count) VM\(count == 1 ? "" : "s") placed on it (\(placed.joined(separator: ", "))\(count > 4 ? ", ..." : "")); delete them first\(evacuate) (moving a running VM needs live migration, which dwcp does not have yet)"
                    )
                }
            case .evacuateHost(let name):
                guard
                    let host = try Row.fetchOne(
                        db, sql: "SELECT state, agent FROM hosts WHERE name = ?", arguments: [name])
                else { throw NodeError(.notFound, "no host named \(name)") }
                let (state, agent): (String, String) = (host["state"], host["agent"])
                if state == "ready" {
                    let runs =
                        agent.isEmpty
                        ? "placement would put its VMs back on it" : "its host agent (on \(agent)) runs its VMs"
                    throw NodeError(
                        .conflict,
                        "host \(name) is ready: \(runs); evacuate only a host that is not ready (its member stopped answering, or was stopped: dwcp host list says why)"
                    )
                }
            case .createVM(let vm):
                if try exists("vms", vm.name) { throw NodeError(.conflict, "VM \(vm.name) already exists") }
            case .setDesiredState(let name, _), .deleteVM(let name):
                guard try exists("vms", name) else { throw NodeError(.notFound, "no VM named \(name)") }
            }
        }
    }

    /// Waits (up to the configured time) until the scheduler has answered for a new VM.
    func waitForPlacement(vm: String, after index: UInt64) async throws {
        let deadline = ContinuousClock.now + configuration.placementWait
        var seen = index
        while ContinuousClock.now < deadline {
            let state = try views.read { db in
                try String.fetchOne(db, sql: "SELECT actual_state FROM vms WHERE name = ?", arguments: [vm])
            }
            guard state == "pending" else { return }
            guard let next = try await waitUntilApplied(seen + 1, timeout: deadline - ContinuousClock.now) else {
                return
            }
            seen = next
        }
    }

    /// A batch of VM creations that used `requestID`: its VMs' intents carry `requestID#1`,
    /// `requestID#2`, …; the first one's log index and how many applied. Nil when none did. (A
    /// client's own ids of that form for other intents, `deploy#2`, are not taken for one.)
    /// Checked before proposing only: a batch and a single intent sent at once with one id both
    /// apply (at apply, ids are matched whole).
    static func batchUse(of requestID: String, _ db: Database) throws -> (index: Int64, vms: Int)? {
        // '$' follows '#': the range holds every id that starts with "requestID#".
        let rows = try Row.fetchAll(
            db.cachedStatement(
                sql:
                    "SELECT request_id, log_index FROM intents WHERE request_id >= ? AND request_id < ? AND outcome <> 'duplicate' AND kind = 'vm.create'"
            ),
            arguments: [requestID + "#", requestID + "$"])
        let indexes = rows.compactMap { row -> Int64? in
            let id: String = row["request_id"]
            let position = id.utf8.dropFirst(requestID.utf8.count + 1)
            return !position.isEmpty && position.allSatisfy({ (0x30...0x39).contains($0) }) ? row["log_index"] : nil
        }
        return indexes.min().map { ($0, indexes.count) }
    }

    /// The refusal of `requestID` for something else (`asked`) when a batch used it.
    static func usedForBatch(_ requestID: String, _ batch: (index: Int64, vms: Int), not asked: String) -> NodeError {
        NodeError(
            .conflict,
            "request id \(requestID) was used at log index \(batch.index) for a batch of \(batch.vms) VM creations (request ids \(requestID)#1 to \(requestID)#\(batch.vms)), not \(asked): a retry repeats the request as it was; use a new request id for a new one"
        )
    }

    /// The `intents` row (log_index, subject, outcome, error) a request id first applied as, not
    /// a later duplicate of it; nil when it never applied.
    static func originalIntent(requestID: String, _ db: Database) throws -> Row? {
        try Row.fetchOne(
            db.cachedStatement(
                sql:
                    "SELECT log_index, kind, subject, payload, outcome, error FROM intents WHERE request_id = ? AND outcome <> 'duplicate'"
            ),
            arguments: [requestID])
    }

    /// What applying the intents at `indexes` did (`applied`, `rejected`, `duplicate`, with the
    /// error), read in one lookup.
    func outcomes(_ indexes: ClosedRange<UInt64>) throws -> [(outcome: String, error: String)] {
        try views.read { db in try Self.outcomes(indexes, db) }
    }

    static func outcomes(_ indexes: ClosedRange<UInt64>, _ db: Database) throws -> [(outcome: String, error: String)] {
        var found: [Int64: (String, String)] = [:]
        let rows = try Row.fetchCursor(
            db.cachedStatement(sql: "SELECT log_index, outcome, error FROM intents WHERE log_index BETWEEN ? AND ?"),
            arguments: [Int64(indexes.lowerBound), Int64(indexes.upperBound)])
        while let row = try rows.next() { found[row["log_index"]] = (row["outcome"], row["error"]) }
        return indexes.map { found[Int64($0)] ?? ("missing", "") }
    }

    /// The rows of `table` with these names, as JSON objects (nil when gone), read in one lookup.
    func rows(_ table: ViewRowName.Table, _ names: [String]) throws -> [JSONValue?] {
        try views.read { db in try names.map { try ViewRowName(table: table, name: $0).read(db) } }
    }
}

extension Intent {
    /// The row an intent is about (its receipt shows that row).
    var subject: ViewRowName {
        switch self {
        case .addHost(let h): ViewRowName(table: .hosts, name: h.name)
        case .removeHost(let name), .setHostLabels(let name, _), .evacuateHost(let name):
            ViewRowName(table: .hosts, name: name)
        case .createVM(let vm): ViewRowName(table: .vms, name: vm.name)
        case .setDesiredState(let name, _), .deleteVM(let name): ViewRowName(table: .vms, name: name)
        }
    }
}
