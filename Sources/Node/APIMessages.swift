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

    enum CodingKeys: String, CodingKey {
        case name, region, cpus, image, labels
        case memoryBytes = "memory_bytes"
        case desiredState = "desired_state"
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

    enum CodingKeys: String, CodingKey {
        case query
        case maxRows = "max_rows"
    }
}
