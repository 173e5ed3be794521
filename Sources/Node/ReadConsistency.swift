/// How fresh a SQL read must be (`dwcp sql --consistency`).
public enum ReadConsistency: String, Sendable, CaseIterable {
    /// This node's views as they are: fastest, possibly behind the region.
    case local
    /// Served only by the leader, from its views caught up to its commit index, without asking
    /// the quorum: fresh unless a new leader has been elected elsewhere a moment ago.
    case leader
    /// Sees every intent acknowledged before the query started (ReadIndex: the leader confirms
    /// with a quorum that it still leads; any member can serve it once its views reach that index).
    case linearizable
}

extension ReadConsistency {
    /// The consistency a request asked for by name (a body's `consistency`, or the query
    /// parameter of a plan, an explanation or a rebalance); linearizable when none is given.
    public init(asked text: String?) throws {
        guard let text else {
            self = .linearizable
            return
        }
        guard let parsed = ReadConsistency(rawValue: text) else {
            throw NodeError(
                .invalid, "invalid consistency '\(text)': \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = parsed
    }
}
