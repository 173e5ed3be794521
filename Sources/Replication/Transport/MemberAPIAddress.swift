/// A member telling another where its HTTP API listens, so that a member that does not lead can
/// name the leader's API address in its refusals (and the CLI can go there). Sent when a member
/// learns its own API address, when it starts, and beside each status answer.
public struct MemberAPIAddress: Sendable, Equatable {
    public var from: String
    public var to: String
    /// `HOST:PORT`.
    public var address: String

    public init(from: String, to: String, address: String) {
        self.from = from
        self.to = to
        self.address = address
    }
}
