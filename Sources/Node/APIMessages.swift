import Store

/// A request body of the HTTP/JSON API (see docs/api.md) that names the fields it takes: a body
/// with another is refused, naming it. Ignored, a misnamed constraint (the views' `required_labels`
/// for the request's `require`) changed what an intent did without a word.
protocol APIRequestBody: Decodable {
    /// The fields the body takes, as JSON names them.
    static var fields: [String] { get }
    /// Names a user may carry over from the views' columns, with the field meant.
    static var namedElsewhere: [String: String] { get }
}

extension APIRequestBody {
    static var namedElsewhere: [String: String] { [:] }

    /// Throws for the first of `names` (a body's fields) that the body does not take.
    static func refuseUnknown(_ names: [String]) throws {
        for name in names where !fields.contains(name) {
            let meant = namedElsewhere[name].map { " ('\(name)' is the views' name; the request's field is '\($0)')" }
            throw NodeError(
                .invalid,
                "the request body has a field this request does not take: '\(Validation.shown(name))'\(meant ?? ""); it takes \(fields.joined(separator: ", "))"
            )
        }
    }
}

struct AddHostRequest: APIRequestBody {
    var name: String
    var region: String?
    var cpus: Int
    var memoryBytes: Int64
    var labels: [String: String]?
    var requestID: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, region, cpus, labels
        case memoryBytes = "memory_bytes"
        case requestID = "request_id"
    }

    static let fields = CodingKeys.allCases.map(\.stringValue)
}

struct CreateVMRequest: APIRequestBody {
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

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, region, cpus, image, labels, require, group, policy, count
        case memoryBytes = "memory_bytes"
        case desiredState = "desired_state"
        case requestID = "request_id"
        case antiAffinity = "anti_affinity"
        case affinityGroup = "affinity_group"
        case checkIndex = "check_index"
    }

    static let fields = CodingKeys.allCases.map(\.stringValue)
    static let namedElsewhere = [
        "required_labels": "require", "placement_policy": "policy", "group_name": "group",
    ]

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

struct HostLabelsRequest: APIRequestBody {
    var labels: [String: String]
    var requestID: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case labels
        case requestID = "request_id"
    }

    static let fields = CodingKeys.allCases.map(\.stringValue)
}

struct RequestIDOnly: APIRequestBody {
    var requestID: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case requestID = "request_id"
    }

    static let fields = CodingKeys.allCases.map(\.stringValue)
}

struct SQLRequest: APIRequestBody {
    var query: String
    var maxRows: Int?
    var consistency: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case query, consistency
        case maxRows = "max_rows"
    }

    static let fields = CodingKeys.allCases.map(\.stringValue)

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
