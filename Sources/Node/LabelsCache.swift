import Synchronization

/// Hosts' labels as the views keep them (a JSON object of strings), parsed once per distinct text
/// and kept for the next placement round: a round reads every host, and parsing each host's JSON
/// again was a fifth of a round on 10,000 hosts. Bounded: it starts over past ``limit`` texts.
final class LabelsCache: Sendable {
    let limit: Int
    private let parsedByText = Mutex<[String: [String: String]]>([:])

    init(limit: Int = 100_000) {
        self.limit = limit
    }

    /// The labels `json` holds (empty when it is not an object of strings).
    func parsed(_ json: String) -> [String: String] {
        if let known = parsedByText.withLock({ $0[json] }) { return known }
        let labels = PlacementInputs.labels(json)
        parsedByText.withLock { parsed in
            if parsed.count >= limit { parsed.removeAll(keepingCapacity: true) }
            parsed[json] = labels
        }
        return labels
    }

    var count: Int { parsedByText.withLock { $0.count } }
}
