/// The outcome of one of the leader's own verifies of the members' views (``PeriodicVerifier``).
public struct ViewsVerification: Sendable {
    /// What it came to.
    public enum Outcome: Sendable {
        /// The members' digests at the marker, compared.
        case compared(ViewsComparison)
        /// No marker could be made, for this reason (leadership moved, or no majority answers).
        case noMarker(String)
    }

    /// The outcome in one word, as the metrics, the API and the log name it.
    public enum Verdict: String, Sendable {
        /// Every member answered, and their views are alike.
        case same
        /// A member's views differ from most members', or a table has no majority.
        case differs
        /// A member gave no digest; those that did agree.
        case incomplete
        /// The members run several schema versions: nothing was compared.
        case notCompared = "not_compared"
        /// No marker could be made.
        case noMarker = "no_marker"
    }

    /// The leader that verified.
    public var verifiedBy: String
    /// When it began, in milliseconds since 1970.
    public var at: Int64
    public var every: Duration
    public var outcome: Outcome

    public var verdict: Verdict {
        guard case .compared(let comparison) = outcome else { return .noMarker }
        if !comparison.comparable { return .notCompared }
        if !comparison.differingMembers.isEmpty || !comparison.tablesWithoutMajority.isEmpty { return .differs }
        return comparison.agree ? .same : .incomplete
    }
}
