import Replication
import Store

extension Node {
    /// Why a `history.compacted` record may not be proposed now: a member that did not answer
    /// its status question, or whose views predate the record; nil when every member's know it.
    func memberWithoutHistoryCompaction() async -> String? {
        await memberWhoseViewsLack("history.compacted") { ViewStore.knowsHistoryCompaction(schemaVersion: $0) }?
            .description
    }

    /// Why a record of `kind` may not be proposed now: a member that did not answer its status
    /// question, or whose views (of the schema version it reports) do not `know` the record; nil
    /// when every member's do. A member of an earlier dwcp would stop at a record it cannot read.
    /// Members `excused` that do not answer are passed over (members known to be down).
    func memberWhoseViewsLack(_ kind: String, excusing excused: Set<String> = [], know: (String) -> Bool) async
        -> MembersHoldBack?
    {
        guard let raft else { return nil }
        let answers = await raft.otherMemberStatuses(timeout: .seconds(1))
        // Without a majority nothing commits, whoever is excused: that is the news, not one member.
        if let lost = Self.majorityLost(voters: Array(raft.status.membership.voters.keys), answers: answers) {
            return lost
        }
        for (id, answer) in answers.sorted(by: { $0.key < $1.key }) {
            switch answer {
            case .failure where excused.contains(id):
                continue
            case .failure(let error):
                return MembersHoldBack("member \(id) did not answer (\(error.message))", silence: true)
            case .success(let status) where !know(status.schemaVersion):
                return MembersHoldBack(
                    "member \(id) runs dwcp \(status.version), whose views cannot apply \(kind) records", silence: false
                )
            case .success:
                continue
            }
        }
        return nil
    }

    /// Says so when fewer than a majority of `voters` answered (this member, not among `answers`,
    /// counts as answering); nil otherwise.
    static func majorityLost(voters: [String], answers: [String: Result<MemberStatus, NodeError>])
        -> MembersHoldBack?
    {
        let silent = voters.filter { id in
            if case .failure = answers[id] { return true }
            return false
        }.sorted()
        guard voters.count - silent.count <= voters.count / 2 else { return nil }
        return MembersHoldBack(
            "fewer than a majority of the region's voters answer (\(silent.joined(separator: ", ")) do not): nothing commits until they do",
            silence: true)
    }
}

/// Why the members' check (``Node/memberWhoseViewsLack(_:excusing:know:)``) holds a record back:
/// what to say, and whether it is members' silence (the usual case at a region's first start) or a
/// member whose dwcp cannot apply the record.
struct MembersHoldBack: Equatable, CustomStringConvertible {
    let description: String
    /// Members did not answer (one, or a majority), rather than answered with views too old.
    let silence: Bool

    init(_ description: String, silence: Bool) {
        self.description = description
        self.silence = silence
    }
}
