import Foundation
import GRDB

/// Applies log entries to the views: the deterministic state machine of the fleet.
///
/// Nothing here reads a clock or draws a random number: two nodes applying the same entries get
/// the same rows. An intent that cannot take effect when its turn comes (a name taken meanwhile, a
/// host that filled up) changes nothing but its `intents` row, which says why.
enum ViewApplier {
    struct BatchOutcome: Sendable {
        var appliedIndex: UInt64
        var failure: StoreError?
        /// The answers asked for (by index) whose intents this batch applied.
        var answers: [UInt64: IntentAnswer] = [:]

        /// The applied index, or the entry that stopped the batch (the ones before it are committed).
        func appliedIndexOrFailure() throws -> UInt64 {
            if let failure { throw failure }
            return appliedIndex
        }
    }

    /// What applying one record did.
    enum Outcome: Equatable {
        case applied
        case rejected(String)
        case duplicate(of: Int64)
    }

    /// Applies `entries` after the views' applied index in `db`'s transaction, and reads the
    /// answer of each intent `answering` asks for right after it applied (when the entry at that
    /// index is the one asked about).
    static func apply(
        _ entries: [LogEntry], answering wanted: [UInt64: IntentAnswer.Request] = [:], db: Database
    ) throws -> BatchOutcome {
        var applied = try ViewStore.appliedIndex(db)
        var appliedTerm: UInt64?
        var failure: StoreError?
        var answers: [UInt64: IntentAnswer] = [:]
        for entry in entries where entry.index > applied {
            guard entry.index == applied + 1 else {
                failure = StoreError(
                    .views, "views at index \(applied) cannot apply entry \(entry.index): entries are missing",
                    index: entry.index)
                break
            }
            if entry.kind == .record {
                let record: Record
                do {
                    record = try Record(decoding: entry.payload, index: entry.index)
                } catch let error as StoreError {
                    failure = error
                    break
                }
                let outcome = try apply(record, index: Int64(entry.index), db: db)
                if let outcome, let request = wanted[entry.index], request.payload == entry.payload {
                    answers[entry.index] = try answer(outcome, about: request.subject, db: db)
                }
            } else if entry.kind == .membership {
                let membership: MembershipRecord
                do {
                    membership = try MembershipRecord(decoding: entry.payload)
                } catch let error as StoreError {
                    failure = StoreError(error.code, "log entry \(entry.index): \(error.message)", index: entry.index)
                    break
                }
                try apply(membership, index: Int64(entry.index), db: db)
            }
            applied = entry.index
            appliedTerm = entry.term
        }
        if let appliedTerm {
            try db.cachedStatement(sql: "UPDATE dwcp_state SET applied_index = ?, applied_term = ? WHERE id = 1")
                .execute(arguments: [Int64(applied), Int64(appliedTerm)])
        }
        return BatchOutcome(appliedIndex: applied, failure: failure, answers: answers)
    }

    /// An intent's answer, its subject's row read in the applier's transaction; nil when that read
    /// fails with the transaction still open (the submitter reads the answer afterwards: an answer
    /// is no reason to stop applying). An error that ended the transaction goes on up: the batch
    /// must not go on outside it.
    private static func answer(
        _ outcome: (name: String, error: String), about subject: ViewRowName, db: Database
    ) throws -> IntentAnswer? {
        do {
            return IntentAnswer(outcome: outcome.name, error: outcome.error, row: try subject.read(db))
        } catch {
            guard db.isInsideTransaction else { throw error }
            return nil
        }
    }

    /// The `members` table becomes the membership: unchanged members keep the index they got
    /// their role at, the others take this entry's.
    static func apply(_ membership: MembershipRecord, index: Int64, db: Database) throws {
        // In id order: rows inserted in a dictionary's order (seeded per process) would sit in
        // another order on every member, and a SELECT without ORDER BY would differ between them.
        let wanted =
            membership.voters.sorted { $0.key < $1.key }.map { ($0.key, $0.value, "voter") }
            + membership.learners.sorted { $0.key < $1.key }.map { ($0.key, $0.value, "learner") }
        try db.execute(
            sql: "DELETE FROM members WHERE id NOT IN (SELECT value FROM json_each(?))",
            arguments: [String(decoding: try JSONEncoder().encode(wanted.map(\.0)), as: UTF8.self)])
        for (id, address, role) in wanted {
            try db.execute(
                sql: """
                    INSERT INTO members (id, address, role, since_index) VALUES (?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET address = excluded.address, role = excluded.role,
                        since_index = excluded.since_index
                    WHERE members.address <> excluded.address OR members.role <> excluded.role
                    """, arguments: [id, address, role, index])
        }
    }

    /// Applies one record; for an intent, returns its outcome as its `intents` row says it.
    @discardableResult
    static func apply(_ record: Record, index: Int64, db: Database) throws -> (name: String, error: String)? {
        guard let intentKind = record.body.intentKind else {
            try applyEffects(record, index: index, db: db)
            return nil
        }
        var outcome = Outcome.applied
        if let requestID = record.requestID,
            let original = try Int64.fetchOne(
                db.cachedStatement(
                    sql: "SELECT log_index FROM intents WHERE request_id = ? AND outcome <> 'duplicate'"),
                arguments: [requestID])
        {
            outcome = .duplicate(of: original)
        } else {
            outcome = try applyEffects(record, index: index, db: db)
        }
        let (outcomeName, error): (String, String) =
            switch outcome {
            case .applied: ("applied", "")
            case .rejected(let reason): ("rejected", reason)
            case .duplicate(let original): ("duplicate", "request already applied at index \(original)")
            }
        try db.cachedStatement(
            sql: """
                INSERT INTO intents (log_index, kind, subject, payload, submitted_at, request_id, outcome, error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            index, intentKind, record.body.subject, record.body.json.serialized(), record.storableTime,
            record.requestID,
            outcomeName, error,
        ])
        return (outcomeName, error)
    }

    @discardableResult
    static func applyEffects(_ record: Record, index: Int64, db: Database) throws -> Outcome {
        if let problem = record.valueOutOfBounds { return .rejected(problem) }
        switch record.body {
        case .historyCompacted(let r):
            // A record cannot cut into what comes after it.
            try compactHistory(before: min(r.beforeIndex, index), db: db)
            return .applied
        case .regionIdentified(let r):
            // The first one wins.
            try db.cachedStatement(sql: "UPDATE dwcp_state SET region_id = ? WHERE id = 1 AND region_id IS NULL")
                .execute(arguments: [r.described])
            return db.changesCount == 0 ? .rejected("the region has an id already") : .applied
        case .hostAdded(let r):
            try db.cachedStatement(
                sql: """
                    INSERT INTO hosts (name, region, cpus, memory_bytes, state, labels, created_index, updated_index)
                    VALUES (?, ?, ?, ?, 'ready', ?, ?, ?) ON CONFLICT (name) DO NOTHING
                    """
            ).execute(arguments: [
                r.name, r.region, r.cpus, r.memoryBytes, JSONValue.map(r.labels).serialized(), index, index,
            ])
            if db.changesCount == 0 { return .rejected("host \(r.name) already exists") }
            try placementChanged(at: index, db: db)
            return .applied

        case .hostStateReported(let r):
            guard HostStateReported.states.contains(r.state) else {
                return .rejected("a host is ready or not_ready, not '\(r.state)'")
            }
            try db.cachedStatement(
                sql: """
                    UPDATE hosts SET state = ?, state_reason = ?, agent = CASE WHEN ? = '' THEN agent ELSE ? END,
                                     updated_index = ?
                    WHERE name = ?
                    """
            ).execute(arguments: [r.state, r.reason, r.agent, r.agent, index, r.name])
            if db.changesCount == 0 { return .rejected("no host named \(r.name)") }
            try placementChanged(at: index, db: db)
            return .applied

        case .hostEvacuated(let r):
            return try evacuate(host: r.name, at: index, time: record.storableTime, db: db)

        case .hostLabelsSet(let r):
            try db.cachedStatement(sql: "UPDATE hosts SET labels = ?, updated_index = ? WHERE name = ?")
                .execute(arguments: [JSONValue.map(r.labels).serialized(), index, r.name])
            if db.changesCount == 0 { return .rejected("no host named \(r.name)") }
            try placementChanged(at: index, db: db)
            return .applied

        case .hostRemoved(let r):
            let placed =
                try Int.fetchOne(
                    db.cachedStatement(sql: "SELECT count(*) FROM vms WHERE host = ?"), arguments: [r.name]) ?? 0
            if placed > 0 {
                return .rejected("host \(r.name) has \(placed) VM\(placed == 1 ? "" : "s") placed on it")
            }
            try db.cachedStatement(sql: "DELETE FROM hosts WHERE name = ?").execute(arguments: [r.name])
            if db.changesCount == 0 { return .rejected("no host named \(r.name)") }
            try placementChanged(at: index, db: db)
            return .applied

        case .vmCreated(let r):
            if let checked = r.checkIndex {
                let changed =
                    try Int64.fetchOne(
                        db.cachedStatement(sql: "SELECT placement_index FROM dwcp_state WHERE id = 1")) ?? 0
                // (Compared as unsigned: a record's check index may be past what SQLite holds.)
                if UInt64(max(changed, 0)) > checked {
                    return .rejected(
                        "placement inputs changed at log index \(changed), after the checked index \(checked); plan again"
                    )
                }
            }
            try db.cachedStatement(
                sql: """
                    INSERT INTO vms (name, region, host, cpus, memory_bytes, image, desired_state, actual_state,
                                     reason, labels, created_index, updated_index, group_name, anti_affinity,
                                     affinity_group, required_labels, placement_policy, desired_index)
                    VALUES (?, ?, NULL, ?, ?, ?, ?, 'pending', 'waiting for placement', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO NOTHING
                    """
            ).execute(arguments: [
                r.name, r.region, r.cpus, r.memoryBytes, r.image, r.desiredState.rawValue,
                JSONValue.map(r.labels).serialized(), index, index, r.group, r.antiAffinity, r.affinityGroup,
                JSONValue.map(r.requiredLabels).serialized(), r.placementPolicy ?? "binpack", index,
            ])
            if db.changesCount == 0 { return .rejected("VM \(r.name) already exists") }
            try event(
                vm: r.name, index: index, at: record.storableTime, from: "", to: "pending", reason: "created", db: db)
            return .applied

        case .vmDesiredStateSet(let r):
            try db.cachedStatement(
                sql: "UPDATE vms SET desired_state = ?, desired_index = ?, updated_index = ? WHERE name = ?"
            ).execute(arguments: [r.desiredState.rawValue, index, index, r.name])
            if db.changesCount == 0 { return .rejected("no VM named \(r.name)") }
            try db.cachedStatement(
                sql: "UPDATE hosts SET vms_changed_index = ? WHERE name = (SELECT host FROM vms WHERE name = ?)"
            ).execute(arguments: [index, r.name])
            return .applied

        case .vmDeleted(let r):
            guard let vm = try VMRow.fetch(r.name, db: db) else { return .rejected("no VM named \(r.name)") }
            if let host = vm.host {
                try releaseCapacity(host: host, cpus: vm.cpus, memoryBytes: vm.memoryBytes, index: index, db: db)
                try placementChanged(at: index, db: db)
            }
            try db.cachedStatement(sql: "DELETE FROM vms WHERE name = ?").execute(arguments: [r.name])
            try event(
                vm: r.name, index: index, at: record.storableTime, from: vm.actualState, to: "deleted",
                reason: "deleted", db: db)
            return .applied

        case .vmPlaced(let r):
            guard let vm = try VMRow.fetch(r.vm, db: db) else { return .rejected("no VM named \(r.vm)") }
            if let current = vm.host { return .rejected("VM \(r.vm) is already placed on \(current)") }
            guard
                let host = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT region, state, cpus - cpus_used AS free_cpus,
                                   memory_bytes - memory_used_bytes AS free_memory
                            FROM hosts WHERE name = ?
                            """),
                    arguments: [r.host])
            else { return .rejected("no host named \(r.host)") }
            let region: String = host["region"]
            let state: String = host["state"]
            let freeCPUs: Int = host["free_cpus"]
            let freeMemory: Int64 = host["free_memory"]
            if region != vm.region { return .rejected("host \(r.host) is in \(region), VM \(r.vm) in \(vm.region)") }
            if state != "ready" { return .rejected("host \(r.host) is \(state)") }
            if freeCPUs < vm.cpus || freeMemory < vm.memoryBytes {
                return .rejected("host \(r.host) no longer has room for VM \(r.vm)")
            }
            if let refusal = try placementConstraintRefusal(r, of: vm, at: index, db: db) { return .rejected(refusal) }
            try db.cachedStatement(
                sql: """
                    UPDATE hosts SET cpus_used = cpus_used + ?, memory_used_bytes = memory_used_bytes + ?,
                                     updated_index = ?, vms_changed_index = ? WHERE name = ?
                    """
            ).execute(arguments: [vm.cpus, vm.memoryBytes, index, index, r.host])
            let reason = "placed on \(r.host); waiting for its host agent"
            try db.cachedStatement(
                sql:
                    "UPDATE vms SET host = ?, actual_state = 'scheduled', reason = ?, explanation = ?, updated_index = ? WHERE name = ?"
            ).execute(arguments: [r.host, reason, r.explanation, index, r.vm])
            try placementChanged(at: index, db: db)
            try db.cachedStatement(sql: "INSERT INTO placements (vm, host, log_index, explanation) VALUES (?, ?, ?, ?)")
                .execute(arguments: [r.vm, r.host, index, r.explanation])
            try event(
                vm: r.vm, index: index, at: record.storableTime, from: vm.actualState, to: "scheduled", reason: reason,
                db: db)
            return .applied

        case .vmUnschedulable(let r):
            guard let vm = try VMRow.fetch(r.vm, db: db) else { return .rejected("no VM named \(r.vm)") }
            if let refusal = Self.anotherVM(vm, named: r.vm, decidedFor: (r.createdIndex, r.createdBefore), at: index) {
                return .rejected(refusal)
            }
            if let current = vm.host { return .rejected("VM \(r.vm) is already placed on \(current)") }
            try db.cachedStatement(
                sql:
                    "UPDATE vms SET actual_state = 'unschedulable', reason = ?, explanation = ?, updated_index = ? WHERE name = ?"
            ).execute(arguments: [r.reason, r.explanation, index, r.vm])
            if vm.actualState != "unschedulable" || vm.reason != r.reason {
                try event(
                    vm: r.vm, index: index, at: record.storableTime, from: vm.actualState, to: "unschedulable",
                    reason: r.reason,
                    db: db)
            }
            return .applied

        case .vmStateReported(let r):
            guard let vm = try VMRow.fetch(r.vm, db: db) else { return .rejected("no VM named \(r.vm)") }
            guard vm.host == r.host else { return .rejected("VM \(r.vm) is not placed on \(r.host)") }
            if let reportedFor = r.createdIndex, vm.createdIndex != Int64(clamping: reportedFor) {
                return .rejected(
                    "the report is about the VM \(r.vm) created at index \(reportedFor), not the one created at \(vm.createdIndex)"
                )
            }
            try db.cachedStatement(
                sql: "UPDATE vms SET actual_state = ?, reason = ?, reported_index = ?, updated_index = ? WHERE name = ?"
            ).execute(arguments: [r.state, r.reason, index, index, r.vm])
            try vmsChanged(onHost: r.host, at: index, db: db)
            if let start = r.start, start.isWithinBounds, try !repeatsLatestStart(start, vm: r.vm, db: db) {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO vm_starts (log_index, vm, host, at, path, first_entry_us, boot_us)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [
                    index, r.vm, r.host, record.storableTime, start.path, start.firstEntryMicroseconds,
                    start.bootMicroseconds,
                ])
            }
            if vm.actualState != r.state {
                try event(
                    vm: r.vm, index: index, at: record.storableTime, from: vm.actualState, to: r.state,
                    reason: r.reason, db: db)
            }
            return .applied
        }
    }

    /// Whether `start` is the measurement of the VM's latest recorded start: the same report
    /// applied again (its agent tried again after an answer that never came, and both copies
    /// committed), which adds no second row to `vm_starts`. (Not the change of state: a start whose
    /// `starting` report was lost for good reports `running` over `running`, and is still a start.
    /// Two starts of one VM measured alike to the microsecond on both durations are taken for one.)
    /// Schema 009 removes the copies earlier builds recorded by the same rule.
    static func repeatsLatestStart(_ start: VMStartMeasurement, vm: String, db: Database) throws -> Bool {
        guard
            let latest = try Row.fetchOne(
                db.cachedStatement(
                    sql:
                        "SELECT path, first_entry_us, boot_us FROM vm_starts WHERE vm = ? ORDER BY log_index DESC LIMIT 1"
                ), arguments: [vm])
        else { return false }
        return latest["path"] == start.path && latest["first_entry_us"] == start.firstEntryMicroseconds
            && latest["boot_us"] == start.bootMicroseconds
    }

    private struct VMRow {
        var host: String?
        var region: String
        var cpus: Int
        var memoryBytes: Int64
        var actualState: String
        var reason: String
        /// The index of its `vm.created` record: which VM of this name it is.
        var createdIndex: Int64

        static func fetch(_ name: String, db: Database) throws -> VMRow? {
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql:
                            "SELECT host, region, cpus, memory_bytes, actual_state, reason, created_index FROM vms WHERE name = ?"
                    ),
                    arguments: [name])
            else { return nil }
            return VMRow(
                host: row["host"], region: row["region"], cpus: row["cpus"], memoryBytes: row["memory_bytes"],
                actualState: row["actual_state"], reason: row["reason"], createdIndex: row["created_index"])
        }
    }

    /// Why a decision for the VM created at `decidedFor` (its `vm.created` index, or how many
    /// entries before `index` that record is) cannot apply to `vm`: it is another VM of that name,
    /// created again since. Nil when it is the same one, or the decision names none.
    private static func anotherVM(
        _ vm: VMRow, named name: String, decidedFor: (index: UInt64?, before: UInt64?), at index: Int64
    ) -> String? {
        let created: Int64? =
            if let createdIndex = decidedFor.index {
                Int64(clamping: createdIndex)
            } else if let createdBefore = decidedFor.before {
                index - Int64(clamping: createdBefore)
            } else {
                nil
            }
        guard let created, vm.createdIndex != created else { return nil }
        return
            "VM \(name) is the one created at index \(vm.createdIndex); the decision was for the one created at \(created)"
    }

    /// Why a placement that names the VM it was decided for (``VMPlaced/createdIndex`` or
    /// ``VMPlaced/createdBefore``) cannot apply: the VM of that name is another one (created again
    /// since), the host lacks a label the VM requires, or the host runs a VM of the group the VM
    /// keeps hard anti-affinity with. Decisions are made on views that may be a few entries old
    /// (the scheduler's, a planned batch's), so what changed meanwhile is checked here, alike on
    /// every member. Nil when it may apply, and for placements without the field (before it).
    private static func placementConstraintRefusal(_ r: VMPlaced, of vm: VMRow, at index: Int64, db: Database) throws
        -> String?
    {
        guard r.createdIndex != nil || r.createdBefore != nil else { return nil }
        if let refusal = anotherVM(vm, named: r.vm, decidedFor: (r.createdIndex, r.createdBefore), at: index) {
            return refusal
        }
        guard
            let constraints = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT group_name, anti_affinity, required_labels FROM vms WHERE name = ?"),
                arguments: [r.vm])
        else { return "no VM named \(r.vm)" }
        let required = labelObject(constraints["required_labels"])
        if !required.isEmpty {
            let hostLabels = labelObject(
                try String.fetchOne(
                    db.cachedStatement(sql: "SELECT labels FROM hosts WHERE name = ?"), arguments: [r.host]))
            for (key, value) in required.sorted(by: { $0.key < $1.key }) where hostLabels[key] != value {
                return "host \(r.host) does not carry the label \(key)=\(value) that VM \(r.vm) requires"
            }
        }
        if let group: String = constraints["group_name"], constraints["anti_affinity"] as String? == "hard" {
            let shared = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM vms WHERE host = ? AND group_name = ?)"),
                arguments: [r.host, group])
            if shared == true {
                return
                    "host \(r.host) already runs a VM of group \(group), which VM \(r.vm) keeps hard anti-affinity with"
            }
        }
        return nil
    }

    /// A labels column (a JSON object of strings) as a dictionary; anything else reads as none.
    private static func labelObject(_ json: String?) -> [String: String] {
        guard let json, case .object(let fields)? = try? JSONValue.parse(json) else { return [:] }
        var labels: [String: String] = [:]
        for (key, value) in fields { if case .string(let text) = value { labels[key] = text } }
        return labels
    }

    /// Notes that a VM placed on `host` changed at `index` (`hosts.vms_changed_index`: the host
    /// agent reads its VMs again only when it moves).
    private static func vmsChanged(onHost host: String, at index: Int64, db: Database) throws {
        try db.cachedStatement(sql: "UPDATE hosts SET vms_changed_index = ? WHERE name = ?")
            .execute(arguments: [index, host])
    }

    /// Notes that something placement depends on changed at `index` (for `--check-index`).
    private static func placementChanged(at index: Int64, db: Database) throws {
        try db.cachedStatement(sql: "UPDATE dwcp_state SET placement_index = ? WHERE id = 1").execute(arguments: [index]
        )
    }

    /// `host.evacuated`: the VMs placed on `host` wait to be placed anew (pending, no host), its
    /// CPUs and memory are free again, and the host records the evacuation. Refused for a host
    /// that is ready: its VMs run there (and placement would put them back on it).
    private static func evacuate(host: String, at index: Int64, time: Int64, db: Database) throws -> Outcome {
        guard
            let state = try String.fetchOne(
                db.cachedStatement(sql: "SELECT state FROM hosts WHERE name = ?"), arguments: [host])
        else { return .rejected("no host named \(host)") }
        if state == "ready" { return .rejected("host \(host) is ready; evacuate only a host that is not ready") }
        let placed = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT name, actual_state FROM vms WHERE host = ? ORDER BY name"),
            arguments: [host])
        let reason = "evacuated from \(host); waiting to be placed anew"
        for vm in placed {
            try event(
                vm: vm["name"], index: index, at: time, from: vm["actual_state"], to: "pending", reason: reason, db: db)
        }
        try db.cachedStatement(
            sql: """
                UPDATE vms SET host = NULL, actual_state = 'pending', reason = ?, explanation = '{}', updated_index = ?
                WHERE host = ?
                """
        ).execute(arguments: [reason, index, host])
        try db.cachedStatement(
            sql: """
                UPDATE hosts SET cpus_used = 0, memory_used_bytes = 0, evacuated_index = ?, updated_index = ?,
                                 vms_changed_index = CASE WHEN ? THEN ? ELSE vms_changed_index END
                WHERE name = ?
                """
        ).execute(arguments: [index, index, !placed.isEmpty, index, host])
        try placementChanged(at: index, db: db)
        return .applied
    }

    /// Gives a deleted VM's CPUs and memory back to its host, and notes that the host's VMs changed.
    private static func releaseCapacity(host: String, cpus: Int, memoryBytes: Int64, index: Int64, db: Database) throws
    {
        try db.cachedStatement(
            sql: """
                UPDATE hosts SET cpus_used = cpus_used - ?, memory_used_bytes = memory_used_bytes - ?,
                                 updated_index = ?, vms_changed_index = ? WHERE name = ?
                """
        ).execute(arguments: [cpus, memoryBytes, index, index, host])
    }

    private static func event(
        vm: String, index: Int64, at: Int64, from: String, to: String, reason: String, db: Database
    ) throws {
        try db.cachedStatement(
            sql: "INSERT INTO vm_events (vm, log_index, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [vm, index, at, from, to, reason])
    }
}
