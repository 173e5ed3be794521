extension NodeError {
    /// The snapshot a compacted log starts behind could not be read as a node started: `why`
    /// names the file and what is wrong with it; the message adds what to do. A region member
    /// catches up from its leader once added again; a single node has only the file.
    static func unusableSnapshot(_ index: UInt64, _ why: any Error, memberID: String?) -> NodeError {
        let remedy =
            if let memberID {
                rejoinRemedy(memberID)
            } else {
                "restore the file from a backup: the log before index \(index + 1) is gone, and only the snapshot holds it"
            }
        return NodeError(
            .unavailable,
            "the log starts behind views snapshot \(index), which this node cannot read: \(why). To go on: \(remedy)",
            cause: why as? any Error & Sendable)
    }

    /// What a region member whose data directory cannot go on does: it is added again, empty, and
    /// catches up from the leader. `isMember`: false for a node the region has not added (it
    /// needs no removal first).
    static func rejoinRemedy(_ memberID: String, isMember: Bool = true) -> String {
        (isMember
            ? "remove \(memberID) (dwcp cluster remove-member \(memberID), asked of a member that leads), empty its data directory, "
            : "empty \(memberID)'s data directory, ")
            + "start it with --join and add it again (dwcp cluster add-member \(memberID)@ADDRESS --learner, then promote it once it has caught up): it catches up from the leader"
    }
}
