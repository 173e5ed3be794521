import Synchronization

/// Hosts' labels as the views keep them (a JSON object of strings), parsed once per distinct text
/// and kept for the next placement round: a round reads every host, and parsing each host's JSON
/// again was a fifth of a round on 10,000 hosts. Bounded: it starts over past ``limit`` texts or
/// ``byteLimit`` bytes of them (a host's labels may take up to about 20 KiB).
final class LabelsCache: Sendable {
    let limit: Int
    let byteLimit: Int
    private let parsedByText = Mutex<(labels: [String: [String: String]], bytes: Int)>(([:], 0))

    init(limit: Int = 100_000, byteLimit: Int = 64 << 20) {
        self.limit = limit
        self.byteLimit = byteLimit
    }

    /// The labels `json` holds (empty when it is not an object of strings).
    func parsed(_ json: String) -> [String: String] {
        if let known = parsedByText.withLock({ $0.labels[json] }) { return known }
        let labels = PlacementInputs.labels(json)
        parsedByText.withLock { parsed in
            if parsed.labels.count >= limit || parsed.bytes + json.utf8.count > byteLimit {
                parsed = ([:], 0)
            }
            parsed.labels[json] = labels
            parsed.bytes += json.utf8.count
        }
        return labels
    }

    var count: Int { parsedByText.withLock { $0.labels.count } }
}
