/// The scheduler's answer for one VM: the host it chose (or why there is none) and how it got there.
public struct PlacementDecision: Sendable, Equatable {
    /// The chosen host, or nil when the VM fits nowhere.
    public var host: String?
    /// Why the VM fits nowhere; empty when placed.
    public var reason: String
    public var explanation: Explanation

    /// How a decision was reached: the policy, how many hosts were looked at, how many each filter
    /// removed (in the order the filters run), and the best candidates with their scores.
    public struct Explanation: Sendable, Equatable {
        public var policy: String
        public var hostsEvaluated: Int
        public var filteredOut: [FilterCount]
        public var candidates: [Candidate]
        /// The host a batch's packing moved this VM off, to leave that host empty; nil when the VM
        /// stayed where it was first placed (``Placer/placeBatch(_:on:)``).
        public var movedOff: String? = nil
    }

    /// How many hosts one filter removed.
    public struct FilterCount: Sendable, Equatable {
        public var filter: String
        public var count: Int
    }

    /// A host that could take the VM, its score (lower wins) and what the score is made of.
    public struct Candidate: Sendable, Equatable {
        public var host: String
        public var score: Double
        public var breakdown: [ScoreTerm]
        public var freeCPUsAfter: Int
        public var freeMemoryBytesAfter: Int64
    }

    /// One named part of a score.
    public struct ScoreTerm: Sendable, Equatable {
        public var name: String
        public var value: Double
    }
}

extension PlacementDecision.Explanation {
    /// The explanation as compact JSON with keys in a fixed order (stored in `placements.explanation`).
    public var json: String {
        func number(_ x: Double) -> String {
            let rounded = (x * 10000).rounded() / 10000
            return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
        }
        var out = "{\"policy\":\"\(policy)\",\"hosts_evaluated\":\(hostsEvaluated),\"filtered_out\":{"
        out += filteredOut.map { "\"\($0.filter)\":\($0.count)" }.joined(separator: ",")
        out += "},\"candidates\":["
        out += candidates.map { candidate in
            "{\"host\":\"\(candidate.host)\",\"score\":\(number(candidate.score)),\"breakdown\":{"
                + candidate.breakdown.map { "\"\($0.name)\":\(number($0.value))" }.joined(separator: ",")
                + "},\"free_cpus_after\":\(candidate.freeCPUsAfter),"
                + "\"free_memory_bytes_after\":\(candidate.freeMemoryBytesAfter)}"
        }.joined(separator: ",")
        out += "]"
        if let movedOff { out += ",\"moved_off\":\"\(movedOff)\"" }
        out += "}"
        return out
    }
}
