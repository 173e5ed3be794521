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
        // Against every index any member counted as committed, applied anywhere or not.
        for (index, term) in committedTerms.sorted(by: { $0.key < $1.key }) where index > raft.snapshotMeta.index {
            if raft.entry(at: index)?.term != term {
                violation("\(node.id) leads term \(raft.term) without committed entry \(index) (term \(term))")
                break
            }
        }
    }

    /// Commits: every index any member counts as committed holds one term on all of them; and
    /// when a leader's commit index moves, a majority of its voters hold that entry on their
    /// disks (the commit rule, checked against what was written rather than what was said).
    func checkCommitted(_ node: SimulatedNode) {
        guard let raft = node.raft, raft.committed > node.checkedCommit else { return }
        defer { node.checkedCommit = raft.committed }
        let from = max(node.checkedCommit, raft.snapshotMeta.index) + 1
        guard from <= raft.committed else { return }
        for index in from...raft.committed {
            guard let term = raft.entry(at: index)?.term else { continue }
            if let known = committedTerms[index] {
                if known != term {
                    violation(
                        "\(node.id) counts entry \(index) of term \(term) committed; another member, of term \(known)")
                    return
                }
            } else {
                committedTerms[index] = term
            }
        }
        let leads = raft.role == .leader || (node.observedRole == .leader && node.observedTerm == raft.term)
        guard leads, let term = raft.entry(at: raft.committed)?.term else { return }
        let voters = raft.membership.voters.keys.sorted()
        let holders = voters.filter { nodes[$0]?.durablyHolds(raft.committed, term: term) ?? false }
        if holders.count < raft.membership.quorum {
            violation(
                "\(node.id) committed \(raft.committed) (term \(term)), which only \(holders) of the voters \(voters) hold on disk"
            )
        }
    }

    /// No payload the region appended twice is applied twice: a token is one proposal or one
    /// forward (sent again under its id). A forward sent again reaches a new leader as new, so
    /// its payload may come again in a later term (the request id makes it apply once), not twice
    /// in one term (the leader knows the forward's id).
    func checkAppliedOnce(_ entry: LogEntry) {
        guard entry.kind == .record, let write = KeyValueMachine.decode(entry.payload) else { return }
        let here = EntryKey(index: entry.index, term: entry.term)
        guard let first = appliedTokens[write.token] else {
            appliedTokens[write.token] = here
            return
        }
        if first.term == here.term {
            violation(
                "request \(write.requestID)'s payload (token \(write.token)) applied twice in term \(here.term): at \(first.index) and \(entry.index)"
            )
        }
    }

    /// Log matching: two entries with the same index and term are the same entry, and follow
    /// entries of the same term (so, by induction, the same log before them).
    func checkLogMatching(_ entry: LogEntry, on node: SimulatedNode) {
        let key = EntryKey(index: entry.index, term: entry.term)
        if let known = entriesSeen[key] {
            if known != entry {
                violation("\(node.id) holds a different entry at index \(entry.index), term \(entry.term)")
            }
        } else {
            entriesSeen[key] = entry
        }
        guard let raft = node.raft else { return }
        let before = entry.index - 1
        let termBefore: UInt64? =
            before == 0 ? 0 : before == raft.snapshotMeta.index ? raft.snapshotMeta.term : raft.entry(at: before)?.term
        guard let termBefore else { return }
        if let known = termsBefore[key] {
            if known != termBefore {
                violation(
                    "\(node.id) holds entry \(entry.index) of term \(entry.term) after one of term \(termBefore); another member, after term \(known)"
                )
            }
        } else {
            termsBefore[key] = termBefore
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
