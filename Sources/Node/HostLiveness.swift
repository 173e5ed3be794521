import Store

/// What the region says of a host whose host agent's member stops answering: the leader reports
/// it `not_ready` (placement passes it over, `dwcp host list` says why) once that member has been
/// silent for ``downAfter`` or is no longer a member, and `ready` again once it has answered for
/// ``upAfter``. A host added by hand (no agent) is left alone, as is a host not ready for another
/// reason (its agent's member runs another host now). Pure but for what it remembers between looks
/// (since when each member answers); ``HostLivenessWatch`` feeds it the hosts in the views and
/// what Raft says of each member every second, and starts it afresh whenever this member leads
/// anew.
struct HostLiveness: Sendable {
    /// A member silent this long has stopped, or is cut off; its VMs' reported states are no
    /// longer news. (A restart, a leader's change or a pause of a few seconds is not worth it.)
    static let downAfter: Duration = .seconds(10)
    /// A member back for this long is back: a link that comes and goes writes a report per
    /// change, and every VM that finds no host gets a new reason each time.
    static let upAfter: Duration = .seconds(3)

    /// A host as the views hold it.
    struct Host: Sendable, Equatable {
        var name: String
        var state: String
        var reason: String
        var agent: String
    }

    /// What is known of a member as the leader hears it.
    enum Member: Sendable, Equatable {
        /// Heard from within an election timeout in this leader's term (the leader itself always is).
        case answering
        /// Not heard from for this long (or since this leader's election).
        case silent(Duration)
        /// Not a member of the region (removed, or never one).
        case unknown
        /// Answers, but its log ends below what it acknowledged (``RaftLostLog``): its views never
        /// catch up as it is, so its host agent never runs its VMs.
        case lostLog
    }

    /// How the reasons this type writes begin.
    static let reasonPrefix = "its host agent's member "

    /// Since when each member has answered, as seen at the looks so far.
    private var answeringSince: [String: ContinuousClock.Instant] = [:]

    /// Whether `reason` is one this type wrote (a host not ready for it is made ready again once
    /// its member answers), not one its agent's member wrote of a host it no longer runs.
    static func isOurs(_ reason: String) -> Bool {
        reason.hasPrefix(reasonPrefix)
            && (reason.contains(" has not answered the leader ") || reason.hasSuffix(" is not a member of the region")
                || reason.contains(" lost its log"))
    }

    /// The reports to propose for `hosts`, given what the leader knows of each member at `now`.
    mutating func reports(hosts: [Host], member: (String) -> Member, at now: ContinuousClock.Instant)
        -> [HostStateReported]
    {
        var reports: [HostStateReported] = []
        var answering: [String: ContinuousClock.Instant] = [:]
        for host in hosts where !host.agent.isEmpty {
            let ours = host.state != "ready" && Self.isOurs(host.reason)
            switch member(host.agent) {
            case .answering:
                let since = answeringSince[host.agent] ?? answering[host.agent] ?? now
                answering[host.agent] = since
                if ours, now - since >= Self.upAfter {
                    reports.append(HostStateReported(name: host.name, state: "ready"))
                }
            case .silent(let silence):
                // (Not ready already for its silence: a longer one is not news.)
                if silence >= Self.downAfter,
                    host.state == "ready" || (ours && !host.reason.contains("has not answered"))
                {
                    let seconds = silence.components.seconds
                    let reason = "\(Self.reasonPrefix)\(host.agent) has not answered the leader for \(seconds) s"
                    reports.append(HostStateReported(name: host.name, state: "not_ready", reason: reason))
                }
            case let member:
                // No member, or one that lost its log (its VMs showed running while nothing ran
                // them, and an evacuation was refused for a host that was ready): news at once.
                let reason =
                    member == .unknown
                    ? "\(Self.reasonPrefix)\(host.agent) is not a member of the region"
                    : "\(Self.reasonPrefix)\(host.agent) lost its log: its views cannot catch up, so its agent runs no VMs (\(NodeError.rejoinRemedy(host.agent)))"
                if host.state == "ready" || (ours && host.reason != reason) {
                    reports.append(HostStateReported(name: host.name, state: "not_ready", reason: reason))
                }
            }
        }
        answeringSince = answering
        return reports
    }
}
