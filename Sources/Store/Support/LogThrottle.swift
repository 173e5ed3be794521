/// Lets one log line through per `interval` for a kind of event that may come in floods (refused
/// connections, failed handshakes, failed checkpoints), and counts the ones it held back for the
/// next line to mention.
public struct LogThrottle: Sendable {
    public let interval: Duration
    private var loggedAt: ContinuousClock.Instant?
    private var held = 0

    public init(interval: Duration = .seconds(10)) { self.interval = interval }

    /// Nil when this event is not to be logged; otherwise how many were held back since the last
    /// one that was.
    public mutating func admit(at now: ContinuousClock.Instant = .now) -> Int? {
        if let loggedAt, loggedAt.duration(to: now) < interval {
            held += 1
            return nil
        }
        defer { (loggedAt, held) = (now, 0) }
        return held
    }

    /// How many events were held back since the last one logged.
    public var heldBack: Int { held }

    /// " (and N more since the last line)", or nothing when none were held back.
    public static func more(_ held: Int) -> String { held > 0 ? " (and \(held) more since the last line)" : "" }
}
