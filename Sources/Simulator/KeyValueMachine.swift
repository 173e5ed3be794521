import Store

/// The state machine the simulated region replicates: string registers, written once per
/// request id (a client's retry of the same request is applied once, as the product's intents
/// with a request id are). Each payload also carries a token of its own, one per proposal or
/// forward (a forward sent again keeps it): the checks find a payload the region itself appended
/// twice, which the request id would otherwise hide.
struct KeyValueMachine: Sendable, Equatable {
    var values: [String: String] = [:]
    var appliedRequests: Set<UInt64> = []
    var appliedIndex: UInt64 = 0

    /// A write as a log payload: `requestID key value token`.
    static func payload(requestID: UInt64, key: String, value: String, token: UInt64) -> [UInt8] {
        Array("\(requestID) \(key) \(value) \(token)".utf8)
    }

    static func decode(_ payload: [UInt8]) -> (requestID: UInt64, key: String, value: String, token: UInt64)? {
        let parts = String(decoding: payload, as: UTF8.self).split(separator: " ")
        guard parts.count == 4, let requestID = UInt64(parts[0]), let token = UInt64(parts[3]) else { return nil }
        return (requestID, String(parts[1]), String(parts[2]), token)
    }

    mutating func apply(_ entry: LogEntry) {
        appliedIndex = entry.index
        guard entry.kind == .record, let write = Self.decode(entry.payload) else { return }
        if appliedRequests.insert(write.requestID).inserted {
            values[write.key] = write.value
        }
    }
}
