import Store

extension Node {
    /// Why a `history.compacted` record may not be proposed now: a member that did not answer
    /// its status question, or whose views predate the record; nil when every member's know it.
    func memberWithoutHistoryCompaction() async -> String? {
        guard let raft else { return nil }
        let answers = await raft.otherMemberStatuses(timeout: .seconds(1))
        for (id, answer) in answers.sorted(by: { $0.key < $1.key }) {
            switch answer {
            case .failure(let error):
                return "member \(id) did not answer (\(error.message))"
            case .success(let status) where !ViewStore.knowsHistoryCompaction(schemaVersion: status.schemaVersion):
                return "member \(id) runs dwcp \(status.version), whose views cannot apply history.compacted records"
            case .success:
                continue
            }
        }
        return nil
    }
}
