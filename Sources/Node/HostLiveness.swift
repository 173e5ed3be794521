import Store

/// What the region says of a host whose host agent's member stops answering: the leader reports
/// it `not_ready` (placement passes it over, `dwcp host list` says why) once that member has been
/// silent for ``downAfter``, and `ready` again once it answers. A host added by hand (no agent)
/// is left alone, as is a host made not ready for another reason. Pure: ``HostLivenessWatch``
/// feeds it the hosts in the views and what Raft says of each member every second.
struct HostLiveness: Sendable {
    /// A member silent this long has stopped, or is cut off; its VMs' reported states are no
    /// longer news. (A restart, a leader's change or a pause of a few seconds is not worth it.)
    static let downAfter: Duration = .seconds(10)

    /// A host as the views hold it.
    struct Host: Sendable, Equatable {
        var name: String
        var state: String
        var reason: String
        var agent: String
    }

    /// What is known of a member as the leader hears it.
    enum Member: Sendable, Equatable {
        /// Heard from within an election timeout (the leader itself always is).
        case answering
        /// Not heard from for this long.
        case silent(Duration)
        /// Not a member of the region (removed, or never one).
        case unknown
    }

    /// How the reasons this type writes begin: a host not ready for one of them is made ready
    /// again when its member answers.
    static let reasonPrefix = "its host agent's member "

    /// The reports to propose for `hosts`, given what the leader knows of each member.
    static func reports(hosts: [Host], member: (String) -> Member) -> [HostStateReported] {
        var reports: [HostStateReported] = []
        for host in hosts where !host.agent.isEmpty {
            let ours = host.state != "ready" && host.reason.hasPrefix(reasonPrefix)
            switch member(host.agent) {
            case .answering:
                if ours { reports.append(HostStateReported(name: host.name, state: "ready")) }
            case .silent(let silence):
                // (Not ready already: a longer silence is not news.)
                if silence >= downAfter, host.state == "ready" {
                    let seconds = silence.components.seconds
                    let reason = "\(reasonPrefix)\(host.agent) has not answered the leader for \(seconds) s"
                    reports.append(HostStateReported(name: host.name, state: "not_ready", reason: reason))
                }
            case .unknown:
                let reason = "\(reasonPrefix)\(host.agent) is not a member of the region"
                if host.state == "ready" || (ours && host.reason != reason) {
                    reports.append(HostStateReported(name: host.name, state: "not_ready", reason: reason))
                }
            }
        }
        return reports
    }
}
