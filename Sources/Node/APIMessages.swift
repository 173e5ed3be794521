import Store

/// Request bodies of the HTTP/JSON API (see docs/api.md). Unknown fields are ignored.
struct AddHostRequest: Decodable {
    var name: String
    var region: String?
    var cpus: Int
    var memoryBytes: Int64
    var labels: [String: String]?
    var requestID: String?

    enum CodingKeys: String, CodingKey {
        case name, region, cpus, labels
        case memoryBytes = "memory_bytes"
        case requestID = "request_id"
    }
}

struct CreateVMRequest: Decodable {
    var name: String
    var region: String?
    var cpus: Int
    var memoryBytes: Int64
    var image: String?
    var labels: [String: String]?
    var desiredState: String?
    var requestID: String?
    var require: [String: String]?
    var group: String?
    var antiAffinity: String?
    var affinityGroup: String?
    var policy: String?
    var count: Int?
    var checkIndex: UInt64?

    enum CodingKeys: String, CodingKey {
        case name, region, cpus, image, labels, require, group, policy, count
        case memoryBytes = "memory_bytes"
        case desiredState = "desired_state"
        case requestID = "request_id"
        case antiAffinity = "anti_affinity"
        case affinityGroup = "affinity_group"
        case checkIndex = "check_index"
    }

    /// The VMs this request creates: NAME, or NAME-1 … NAME-N with `count`.
    func vms() throws -> [VMCreated] {
        var desired = VMDesiredState.running
        if let raw = desiredState {
            guard let state = VMDesiredState(rawValue: raw) else {
                throw NodeError(.invalid, "invalid desired_state '\(Validation.shown(raw))': running or stopped")
            }
            desired = state
        }
        let n = count ?? 1
        let range = Validation.batchCountRange
        guard range.contains(n) else {
            throw NodeError(.invalid, "invalid count \(n): \(range.lowerBound)-\(range.upperBound)")
        }
        return Validation.vmNames(name, count: count).map { vmName in
            var vm = VMCreated(
                name: vmName, region: region ?? "", cpus: cpus, memoryBytes: memoryBytes, image: image ?? "",
                labels: labels ?? [:], desiredState: desired)
            vm.requiredLabels = require ?? [:]
            vm.group = group
            vm.antiAffinity = antiAffinity
            vm.affinityGroup = affinityGroup
            vm.placementPolicy = policy
            return vm
        }
    }
}

struct HostLabelsRequest: Decodable {
    var labels: [String: String]
    var requestID: String?

    enum CodingKeys: String, CodingKey {
        case labels
        case requestID = "request_id"
    }
}

struct RequestIDOnly: Decodable {
    var requestID: String?

    enum CodingKeys: String, CodingKey {
        case requestID = "request_id"
    }
}

struct SQLRequest: Decodable {
    var query: String
    var maxRows: Int?
    var consistency: String?

    enum CodingKeys: String, CodingKey {
        case query, consistency
        case maxRows = "max_rows"
    }

    /// The row limit asked for (the node's own when none is given).
    func rowLimit() throws -> Int? {
        guard let maxRows else { return nil }
        guard maxRows >= 1 else { throw NodeError(.invalid, "invalid max_rows \(maxRows): 1 or more") }
        return maxRows
    }

    /// The consistency asked for (linearizable when none is given).
    func readConsistency() throws -> ReadConsistency {
        try ReadConsistency(asked: consistency)
    }
}
