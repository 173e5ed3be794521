/// A member telling another which region it was started in (`--region`). A member that hears a
/// region other than its own from a member of its group ignores that member's Raft messages, as
/// it would a member it cannot reach: a member started under the wrong name would otherwise vote,
/// lead and validate intents (whose hosts and VMs must be in the region) against another region's
/// name. Sent as a member starts, when it connects in, when it learns a membership, and beside
/// each status answer; members before this type skip it.
public struct MemberRegion: Sendable, Equatable {
    public var from: String
    public var to: String
    public var region: String

    public init(from: String, to: String, region: String) {
        self.from = from
        self.to = to
        self.region = region
    }
}
