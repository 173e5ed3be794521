/// The tunables of one Raft group. Times are in ticks: the driver calls ``Raft/tick()`` at a fixed
/// interval (the product uses 10 ms), so a value of 10 is 100 ms there.
public struct RaftConfiguration: Sendable, Equatable {
    /// A follower that hears nothing from a leader for a random time in
    /// `electionTicks ..< 2 * electionTicks` starts an election.
    public var electionTicks: Int
    /// How often a leader sends heartbeats.
    public var heartbeatTicks: Int
    /// Appends in flight to one follower before the leader waits for acknowledgements.
    public var maxInflightAppends: Int
    /// The most entries one append carries.
    public var maxEntriesPerAppend: Int
    /// The most payload bytes one append carries (one entry larger than this still goes alone).
    public var maxBytesPerAppend: Int
    /// Ask for votes without raising the term first, so a node that was cut off cannot disrupt
    /// a healthy leader when it comes back.
    public var preVote: Bool
    /// A leader that has not heard from a majority within an election timeout steps down, and
    /// followers that hear from a leader ignore vote requests (leader lease).
    public var checkQuorum: Bool

    public init(
        electionTicks: Int = 10, heartbeatTicks: Int = 1, maxInflightAppends: Int = 64,
        maxEntriesPerAppend: Int = 512, maxBytesPerAppend: Int = 1 << 20, preVote: Bool = true,
        checkQuorum: Bool = true
    ) {
        self.electionTicks = electionTicks
        self.heartbeatTicks = heartbeatTicks
        self.maxInflightAppends = maxInflightAppends
        self.maxEntriesPerAppend = maxEntriesPerAppend
        self.maxBytesPerAppend = maxBytesPerAppend
        self.preVote = preVote
        self.checkQuorum = checkQuorum
    }
}
