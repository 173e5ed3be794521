import Replication
import Store

extension Simulation {
    func violation(_ text: String) {
        trace("VIOLATION: \(text)")
        report.violations.append("at \(now / 1000) ms: \(text)")
    }

    /// Role changes: at most one leader per term, and a new leader holds every committed entry.
    func observe(_ node: SimulatedNode) {
        guard let raft = node.raft else { return }
        defer {
            node.observedRole = raft.role
            node.observedTerm = raft.term
        }
        guard raft.role == .leader, node.observedRole != .leader || node.observedTerm != raft.term else { return }
        report.elections += 1
        trace("\(node.id) leads term \(raft.term)")
        if let other = leaders[raft.term], other != node.id {
            violation("two leaders in term \(raft.term): \(other) and \(node.id)")
        }
        leaders[raft.term] = node.id
        var index = raft.snapshotMeta.index + 1
        while index <= report.committedIndex {
            if let committed = committedEntries[index], raft.entry(at: index)?.term != committed.term {
                violation("\(node.id) leads term \(raft.term) without committed entry \(index)")
                break
            }
            index += 1
        }
    }

    /// Log matching: two entries with the same index and term are the same entry.
    func checkLogMatching(_ entry: LogEntry, on node: SimulatedNode) {
        let key = EntryKey(index: entry.index, term: entry.term)
        if let known = entriesSeen[key] {
            if known != entry {
                violation("\(node.id) holds a different entry at index \(entry.index), term \(entry.term)")
            }
        } else {
            entriesSeen[key] = entry
        }
    }

    func finish() {
        retireIfCommitted()
        if lastWriteAt <= options.duration {
            violation("no write completed after the region was healed (last at \(lastWriteAt / 1000) ms)")
        }
        for key in LinearizabilityChecker.violations(in: history) {
            violation("the history of key \(key) is not linearizable")
        }
        report.indeterminateWrites =
            history.filter {
                if case .write = $0.kind { return $0.returnedAt == nil }
                return false
            }.count
        // The members' logs agree wherever they overlap, below the last index on which they match.
        let live = nodeIDs.filter { nodes[$0]!.isUp }
        for (position, a) in live.enumerated() {
            for b in live[(position + 1)...] {
                let left = nodes[a]!.raft!
                let right = nodes[b]!.raft!
                let low = max(left.snapshotMeta.index, right.snapshotMeta.index) + 1
                let high = min(left.lastIndex, right.lastIndex)
                guard low <= high else { continue }
                var matching = high
                while matching >= low, left.entry(at: matching)?.term != right.entry(at: matching)?.term {
                    matching -= 1
                }
                var index = low
                while index < matching {
                    if left.entry(at: index) != right.entry(at: index) {
                        violation("\(a) and \(b) differ at \(index) below their matching index \(matching)")
                        break
                    }
                    index += 1
                }
            }
        }
    }
}
