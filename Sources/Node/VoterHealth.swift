/// What the leader says of voters that stop answering: a voter silent for ``warnAfter`` is
/// warned about once, with how many voters the region still runs on and whether one more loss
/// would stop its writes, and noted again when it answers. Until this the leader logged only its
/// first failed connection ("cannot reach peer …: Connection refused"), and nothing said the
/// region had lost its margin. Pure: ``VoterHealthWatch`` feeds it what Raft reports each second.
struct VoterHealth: Sendable, Equatable {
    /// Shorter silences (a member restarting, a pause) are not worth a line.
    static let warnAfter: Duration = .seconds(5)

    /// When each silent voter was first seen silent, and whether it was warned about.
    private var silentSince: [String: ContinuousClock.Instant] = [:]
    private var warned: Set<String> = []

    enum Report: Equatable {
        /// `member` has been silent `for`; `answering` of `voters` answer (this leader among them).
        case silent(String, for: Duration, answering: Int, voters: Int, quorum: Int)
        /// `member`, warned about, answers again after `after`.
        case back(String, after: Duration, answering: Int, voters: Int)
    }

    /// Voters silent for ``warnAfter`` or longer: the `dwcp_raft_voters_silent` gauge.
    var silentCount: Int { warned.count }

    /// Notes that `silent` of the region's `voters` (of which `quorum` commit) are silent now
    /// (`nil`: this member does not lead, and forgets); returns what to say. A voter removed
    /// meanwhile is forgotten unsaid.
    mutating func note(silent: [String]?, voters members: Set<String>, quorum: Int, at now: ContinuousClock.Instant)
        -> [Report]
    {
        guard let silent else {
            self = VoterHealth()
            return []
        }
        let voters = members.count
        for member in silentSince.keys where !members.contains(member) {
            silentSince[member] = nil
            warned.remove(member)
        }
        // Counted as answering: every voter but those silent for ``warnAfter`` (a voter quiet for
        // a moment is not a lost one).
        var reports: [Report] = []
        for member in silentSince.keys.sorted() where !silent.contains(member) {
            let since = silentSince.removeValue(forKey: member)!
            if warned.remove(member) != nil {
                reports.append(.back(member, after: now - since, answering: voters - warned.count, voters: voters))
            }
        }
        for member in silent {
            let since = silentSince[member] ?? now
            silentSince[member] = since
            if !warned.contains(member), now - since >= Self.warnAfter {
                warned.insert(member)
                reports.append(
                    .silent(member, for: now - since, answering: voters - warned.count, voters: voters, quorum: quorum))
            }
        }
        return reports
    }

    /// A report in words, for the log.
    static func line(_ report: Report) -> String {
        switch report {
        case .silent(let member, let silence, let answering, let voters, let quorum):
            let margin =
                answering < quorum
                ? "too few to commit (\(quorum) are needed)"
                : answering == quorum
                    ? "the fewest that can commit: one more lost and it takes no writes"
                    : "\(quorum) are needed to commit"
            return
                "voter \(member) has not answered for \(seconds(silence)): the region runs on \(answering) of its \(voters) voters, \(margin)"
        case .back(let member, let silence, let answering, let voters):
            return
                "voter \(member) answers again after \(seconds(silence)) silent: \(answering) of \(voters) voters answer"
        }
    }

    static func seconds(_ duration: Duration) -> String {
        let whole = duration.components.seconds
        return whole < 120 ? "\(whole) s" : "\(whole / 60) min"
    }
}
