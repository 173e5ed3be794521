import Replication

/// The regions the other members of a group said they were started in (``MemberRegion``), whom
/// this member has told its own, and one log line a minute for each member found in another region.
/// Kept by ``RaftConsensus`` under one lock; its Raft messages from a member it finds here in
/// another region are ignored.
struct MemberRegions: Sendable {
    /// What each member said, by id. Senders that are not (yet) members are kept too: a node
    /// started with `--join` says its region to its `--peer`s before it is added, so that
    /// `dwcp cluster add-member` can refuse it.
    private(set) var said: [String: String] = [:]
    /// The members told this member's region, and at which replication address.
    var toldTo: [String: String] = [:]
    private var throttles: [String: LogThrottle] = [:]

    /// The most senders kept: ids come off the network.
    static let capacity = 1024

    /// Records what `member` said; returns true when that region differs from `own` and a log line
    /// about it is due (the first time, then once a minute).
    mutating func record(_ region: String, from member: String, own: String, at now: ContinuousClock.Instant = .now)
        -> Bool
    {
        guard said[member] != nil || said.count < Self.capacity else { return false }
        said[member] = region
        guard region != own else {
            throttles[member] = nil
            return false
        }
        return throttles[member, default: LogThrottle(interval: .seconds(60))].admit(at: now) != nil
    }

    /// The region `member` said when it is not `own`; nil when it said `own` or nothing yet.
    func otherRegion(of member: String, own: String) -> String? {
        guard let region = said[member], region != own else { return nil }
        return region
    }
}
