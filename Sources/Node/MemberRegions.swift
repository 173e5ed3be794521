import Replication
import Store

/// The regions the other members of a group said they were started in (``MemberRegion``), whom
/// this member has told its own, and one log line a minute for each member found in another region.
/// Kept by ``RaftConsensus`` under one lock; its Raft messages from a member it finds here in
/// another region are ignored.
struct MemberRegions: Sendable {
    /// What each member said, by id; and what a few senders that are not members said (a node
    /// started with `--join` says its region to its `--peer`s before it is added, so that
    /// `dwcp cluster add-member` can refuse it).
    private(set) var said: [String: String] = [:]
    /// The members this one has told its region, and at which replication address.
    var toldTo: [String: String] = [:]
    private var throttles: [String: LogThrottle] = [:]
    /// How each member said its region was founded (``MemberFounding``), by id.
    private(set) var foundings: [String: String] = [:]
    private var foundingThrottles: [String: LogThrottle] = [:]
    /// The members whose founding was logged before this member could say which side was started
    /// otherwise ("compare the two --peer lists"): logged again, with the remedy, once it can.
    private var loggedUndecided: Set<String> = []
    /// The members as of the latest membership: what a member that left said is forgotten, so
    /// that its id, added again, starts untainted.
    private var members: Set<String> = []
    /// The senders kept that are not members, oldest first.
    private var outsiders: [String] = []

    /// The most senders kept that are not members (the oldest is forgotten first): ids come off
    /// the network.
    static let outsiderCapacity = 64

    /// Records what `member` said; returns true when that region differs from `own` and a log line
    /// about it is due (the first time, then once a minute).
    mutating func record(_ region: String, from member: String, own: String, at now: ContinuousClock.Instant = .now)
        -> Bool
    {
        if !members.contains(member), said[member] == nil {
            outsiders.append(member)
            if outsiders.count > Self.outsiderCapacity { forget(outsiders.removeFirst()) }
        }
        said[member] = region
        guard region != own else {
            throttles[member] = nil
            return false
        }
        return throttles[member, default: LogThrottle(interval: .seconds(60))].admit(at: now) != nil
    }

    /// A new membership: what members that left said is forgotten; new members stop counting
    /// against the outsiders' room.
    mutating func noteMembers(_ current: Set<String>) {
        for id in members.subtracting(current) { forget(id) }
        members = current
        outsiders.removeAll { current.contains($0) }
    }

    private mutating func forget(_ id: String) {
        said[id] = nil
        throttles[id] = nil
        toldTo[id] = nil
        foundings[id] = nil
        foundingThrottles[id] = nil
        loggedUndecided.remove(id)
    }

    /// Records how `member` said its region was founded; returns true when that differs from
    /// `own` and a log line about it is due (the first time, then once a minute). Kept for the
    /// senders whose region is kept (a member sends its region first, on the same connection):
    /// ids come off the network.
    mutating func record(founding: String, from member: String, own: String, at now: ContinuousClock.Instant = .now)
        -> Bool
    {
        guard members.contains(member) || said[member] != nil else { return false }
        foundings[member] = founding
        guard founding != own else {
            foundingThrottles[member] = nil
            return false
        }
        return foundingThrottles[member, default: LogThrottle(interval: .seconds(60))].admit(at: now) != nil
    }

    /// Whether a quorum of `membership`'s voters, this member (`id`) among them, share its founding
    /// `own` (as each said): another is then the odd one.
    func shareFounding(_ membership: RaftMembership, own: String, id: String) -> Bool {
        let alike = membership.voters.keys.filter { $0 == id || foundings[$0] == own }.count
        return alike >= membership.quorum
    }

    /// Forgets the founding `member` said (it says it knows none now).
    mutating func forgetFounding(of member: String) {
        foundings[member] = nil
        foundingThrottles[member] = nil
        loggedUndecided.remove(member)
    }

    /// `member`'s other founding was just logged without saying which side was started otherwise:
    /// this member had not heard enough of its voters yet.
    mutating func noteLoggedUndecided(_ member: String) { loggedUndecided.insert(member) }

    /// This member now knows most of its voters share its founding: the members logged undecided
    /// are logged again, with the remedy, the next time they say their founding (every few
    /// seconds), instead of a minute later.
    mutating func decideLoggedUndecided() {
        for id in loggedUndecided { foundingThrottles[id] = nil }
        loggedUndecided.removeAll()
    }

    /// The founding `member` said when it is not `own`; nil when it said `own` or nothing yet.
    func otherFounding(of member: String, own: String) -> String? {
        guard let founding = foundings[member], founding != own else { return nil }
        return founding
    }

    /// Whether most of `membership`'s voters said a founding other than `own` (all the same one):
    /// this member (`id`) is then the one started with another `--peer` list.
    func majorityFoundedOtherwise(_ membership: RaftMembership, own: String, id: String) -> String? {
        Self.majority(of: membership, besides: id) { otherFounding(of: $0, own: own) }
    }

    /// The region `member` said when it is not `own`; nil when it said `own` or nothing yet.
    func otherRegion(of member: String, own: String) -> String? {
        guard let region = said[member], region != own else { return nil }
        return region
    }

    /// The region a majority of `membership`'s voters said, when it is not `own`: this member
    /// (`id`) is then the one started under the wrong name, not the others. Nil when no other
    /// region has a majority.
    func majorityRegion(of membership: RaftMembership, own: String, id: String) -> String? {
        Self.majority(of: membership, besides: id) { otherRegion(of: $0, own: own) }
    }

    /// What a quorum of `membership`'s voters other than `id` said alike, of what `said` gives
    /// for each (nil: nothing, or what this member says itself); nil when no value has a quorum.
    private static func majority(
        of membership: RaftMembership, besides id: String, _ said: (String) -> String?
    ) -> String? {
        var counts: [String: Int] = [:]
        for voter in membership.voters.keys where voter != id {
            if let value = said(voter) { counts[value, default: 0] += 1 }
        }
        return counts.first { $0.value >= membership.quorum }?.key
    }
}
