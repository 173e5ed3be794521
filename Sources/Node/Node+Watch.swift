import Store

extension Node {
    /// Checks that a watch can start at `index`: it must not be below the compacted prefix.
    public func checkWatchStart(_ index: UInt64) throws {
        try raft?.refuseIfRemoved()
        try Validation.logIndex(index, field: "from_index")
        let first = log.firstIndex
        if index < first && index <= log.lastIndex {
            throw NodeError(.compacted, "compacted: entries before \(first) are gone; re-list from index \(first)")
        }
    }

    /// Calls `emit` with each committed entry from `index` on, in order, then follows new commits
    /// until `limit` entries were emitted, the task is cancelled, the node shuts down, or (a
    /// region's member) it is removed from the region: it takes no more entries then, and a watch
    /// that waited on silently would look like a quiet fleet.
    public func watch(from index: UInt64, limit: Int?, emit: (LogEntry) async throws -> Void) async throws {
        try checkWatchStart(index)
        var next = max(index, 1)
        var remaining = limit ?? .max
        while remaining > 0 {
            guard let commit = try await consensus.committed.wait(until: next, timeout: .seconds(1)) else {
                if let raft, raft.wasRemoved {
                    throw NodeError(
                        .removed,
                        "\(configuration.nodeID) was removed from the region: it takes no more entries; watch a member (dwcp cluster status lists them)"
                    )
                }
                continue
            }
            let batch = try log.entries(in: next...commit, maxCount: min(remaining, 1024))
            guard !batch.isEmpty else { throw NodeError(.internal, "log entry \(next) is missing") }
            for entry in batch { try await emit(entry) }
            remaining -= batch.count
            next = batch[batch.count - 1].index + 1
        }
    }

    /// One watched entry as a JSON object: its position, then the record.
    public static func watchLine(_ entry: LogEntry) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("log_index", .int(Int64(entry.index))), ("term", .int(Int64(entry.term))),
        ]
        switch entry.kind {
        case .record:
            do {
                let record = try Record(decoding: entry.payload, index: entry.index)
                if case .object(let fields) = record.json { members += fields }
            } catch {
                members.append(("error", .string("\(error)")))
            }
        case .noop:
            members.append(("kind", .string("noop")))
            // A verify's marker (dwcp cluster verify, the leader's own every --verify-every).
            if entry.isViewsDigestMarker { members.append(("marker", .string("views-digest"))) }
        case .membership: members.append(("kind", .string("membership")))
        }
        return .object(members)
    }
}
