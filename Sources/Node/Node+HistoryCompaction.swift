import Replication
import Store

extension Node {
    /// Why a `history.compacted` record may not be proposed now: a member that did not answer
    /// its status question, or whose views predate the record; nil when every member's know it.
    func memberWithoutHistoryCompaction() async -> String? {
        await memberWhoseViewsLack("history.compacted") { ViewStore.knowsHistoryCompaction(schemaVersion: $0) }
    }

    /// Why a record of `kind` may not be proposed now: a member that did not answer its status
    /// question, or whose views (of the schema version it reports) do not `know` the record; nil
    /// when every member's do. A member of an earlier dwcp would stop at a record it cannot read.
    /// Members `excused` that do not answer are passed over (members known to be down).
    func memberWhoseViewsLack(_ kind: String, excusing excused: Set<String> = [], know: (String) -> Bool) async
        -> String?
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
                return "member \(id) did not answer (\(error.message))"
            case .success(let status) where !know(status.schemaVersion):
                return "member \(id) runs dwcp \(status.version), whose views cannot apply \(kind) records"
            case .success:
                continue
            }
        }
        return nil
    }

    /// Says so when fewer than a majority of `voters` answered (this member, not among `answers`,
    /// counts as answering); nil otherwise.
    static func majorityLost(voters: [String], answers: [String: Result<MemberStatus, NodeError>]) -> String? {
        let silent = voters.filter { id in
            if case .failure = answers[id] { return true }
            return false
        }.sorted()
        guard voters.count - silent.count <= voters.count / 2 else { return nil }
        return
            "fewer than a majority of the region's voters answer (\(silent.joined(separator: ", ")) do not): nothing commits until they do"
    }
}
