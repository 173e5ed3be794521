/// The scheduler's answer for one VM: the host it chose (or why there is none) and how it got there.
public struct PlacementDecision: Sendable, Equatable {
    /// The chosen host, or nil when the VM fits nowhere.
    public var host: String?
    /// Why the VM fits nowhere; empty when placed.
    public var reason: String
    public var explanation: Explanation

    /// How a decision was reached: how many hosts were looked at, how many each filter removed,
    /// and the best candidates with their scores (lower is better).
    public struct Explanation: Sendable, Equatable {
        public var policy: String
        public var hostsEvaluated: Int
        public var filteredOut: [(filter: String, count: Int)]
        public var candidates: [Candidate]

        public static func == (lhs: Explanation, rhs: Explanation) -> Bool {
            lhs.policy == rhs.policy && lhs.hostsEvaluated == rhs.hostsEvaluated && lhs.candidates == rhs.candidates
                && lhs.filteredOut.map(\.filter) == rhs.filteredOut.map(\.filter)
                && lhs.filteredOut.map(\.count) == rhs.filteredOut.map(\.count)
        }
    }

    /// A host that could take the VM, with what would be left over.
    public struct Candidate: Sendable, Equatable {
        public var host: String
        public var score: Double
        public var freeCPUsAfter: Int
        public var freeMemoryBytesAfter: Int64
    }
}

extension PlacementDecision.Explanation {
    /// The explanation as compact JSON with keys in a fixed order (stored in `placements.explanation`).
    public var json: String {
        var out = "{\"policy\":\"\(policy)\",\"hosts_evaluated\":\(hostsEvaluated),\"filtered_out\":{"
        out += filteredOut.map { "\"\($0.filter)\":\($0.count)" }.joined(separator: ",")
        out += "},\"candidates\":["
        out += candidates.map {
            "{\"host\":\"\($0.host)\",\"score\":\(($0.score * 10000).rounded() / 10000),"
                + "\"free_cpus_after\":\($0.freeCPUsAfter),\"free_memory_bytes_after\":\($0.freeMemoryBytesAfter)}"
        }.joined(separator: ",")
        out += "]}"
        return out
    }
}
