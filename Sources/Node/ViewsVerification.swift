/// The outcome of one of the leader's own verifies of the members' views (``PeriodicVerifier``).
public struct ViewsVerification: Sendable {
    /// What it came to.
    public enum Outcome: Sendable {
        /// The members' digests at the marker, compared.
        case compared(ViewsComparison)
        /// No marker could be made, for this reason (leadership moved, or no majority answers).
        case noMarker(String)
    }

    public var checkedBy: String
    /// When it began, in milliseconds since 1970.
    public var at: Int64
    public var every: Duration
    public var outcome: Outcome

    static func now() -> Int64 { Node.now() }

    /// How the metrics and the log name the outcome: `same`, `differs` (a member differs, or a
    /// table has no majority), `incomplete` (a member gave no digest; those that did agree),
    /// `not_compared` (several schema versions) or `no_marker`.
    public var outcomeName: String {
        guard case .compared(let comparison) = outcome else { return "no_marker" }
        if !comparison.comparable { return "not_compared" }
        if !comparison.differingMembers.isEmpty || !comparison.tablesWithoutMajority.isEmpty { return "differs" }
        return comparison.agree ? "same" : "incomplete"
    }
}
