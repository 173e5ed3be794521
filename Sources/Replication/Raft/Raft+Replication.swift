import Store

extension Raft {
    // MARK: - Follower side

    mutating func handleAppend(
        from leader: String, prevIndex: UInt64, prevTerm: UInt64, entries: [LogEntry], commit: UInt64
    ) {
        if prevIndex < log.committed {
            // Already committed here; say how far this log is known good.
            send(.appendResponse(accepted: true, index: log.committed, hintIndex: 0, hintTerm: 0), to: leader)
            return
        }
        guard log.matches(index: prevIndex, term: prevTerm) else {
            let hint = log.lastIndex(atOrBefore: prevIndex, withTermAtMost: prevTerm)
            send(
                .appendResponse(accepted: false, index: prevIndex, hintIndex: hint, hintTerm: log.term(at: hint) ?? 0),
                to: leader)
            return
        }
        let result = log.append(after: prevIndex, entries)
        record(truncatedFrom: result.truncatedFrom, new: result.new)
        let lastNew = prevIndex + UInt64(entries.count)
        let newCommit = min(commit, lastNew)
        if newCommit > log.committed { log.committed = newCommit }
        send(.appendResponse(accepted: true, index: lastNew, hintIndex: 0, hintTerm: 0), to: leader)
    }

    /// Notes log changes in the ready and follows any membership entry among them.
    mutating func record(truncatedFrom: UInt64?, new: [LogEntry]) {
        if let truncatedFrom {
            ready.truncateFrom = min(ready.truncateFrom ?? truncatedFrom, truncatedFrom)
            ready.entries.removeAll { $0.index >= truncatedFrom }
        }
        ready.entries.append(contentsOf: new)
        if (truncatedFrom.map { $0 <= membershipIndex } ?? false) || new.contains(where: { $0.kind == .membership }) {
            refreshMembership()
        }
    }

    mutating func handleSnapshot(from leader: String, _ meta: RaftSnapshotMeta) {
        if meta.index <= log.committed {
            send(.appendResponse(accepted: true, index: log.committed, hintIndex: 0, hintTerm: 0), to: leader)
            return
        }
        if log.matches(index: meta.index, term: meta.term) {
            // This log already has it; only the commit index moves.
            log.committed = meta.index
        } else {
            // Assigned, not appended: appending would copy every entry here, under the lock.
            let former = log.restore(meta)
            if ready.released.isEmpty { ready.released = former } else { ready.released += former }
            ready.snapshot = meta
            ready.entries = []
            ready.truncateFrom = nil
            ready.committed = []
            refreshMembership()
        }
        send(.appendResponse(accepted: true, index: meta.index, hintIndex: 0, hintTerm: 0), to: leader)
    }

    // MARK: - Leader side

    /// Appends entries this leader creates (indexes and terms are filled in here).
    mutating func appendAsLeader(_ drafts: [LogEntry]) {
        var next = log.lastIndex + 1
        var created: [LogEntry] = []
        created.reserveCapacity(drafts.count)
        for var entry in drafts {
            entry.index = next
            entry.term = term
            created.append(entry)
            next += 1
        }
        log.appendLocal(created)
        record(truncatedFrom: nil, new: created)
        hasUnsentEntries = true
    }

    /// Sends the next append (or snapshot) to `peer` if its flow control allows; true if one went.
    @discardableResult
    mutating func sendAppend(to peer: String, allowEmpty: Bool) -> Bool {
        guard var member = progress[peer] else { return false }
        if member.isPaused { return false }
        if member.state == .replicate, member.inflight.count >= configuration.maxInflightAppends { return false }
        let prevIndex = member.next - 1
        guard let prevTerm = log.term(at: prevIndex) else {
            // The entries it needs are compacted: send the snapshot, if the member answers at all
            // (a snapshot is large; one for a member that is down would only be dropped).
            guard member.recentlyActive else { return false }
            member.becomeSnapshot(log.snapshot.index)
            progress[peer] = member
            send(.snapshot(log.snapshot), to: peer)
            return true
        }
        let entries = log.entries(
            from: member.next, maxCount: configuration.maxEntriesPerAppend, maxBytes: configuration.maxBytesPerAppend)
        if entries.isEmpty, !allowEmpty { return false }
        switch member.state {
        case .replicate:
            if let last = entries.last {
                member.next = last.index + 1
                member.inflight.append(last.index)
            }
        case .probe:
            member.probeSent = true
        case .snapshot:
            break
        }
        progress[peer] = member
        send(
            .append(
                prevIndex: prevIndex, prevTerm: prevTerm, entries: entries,
                commit: min(log.committed, max(member.match, prevIndex + UInt64(entries.count)))),
            to: peer)
        return true
    }

    /// A member that could not be reached says it is up again (it restarted, and announced
    /// itself). A leader forgets the appends in flight to it (they were lost) and probes it at
    /// once from what it is known to hold, instead of at the next heartbeat, or after its stall
    /// detection gave up on them.
    public mutating func peerIsBack(_ peer: String) {
        guard role == .leader, var member = progress[peer] else { return }
        if case .snapshot = member.state { return }  // the snapshot is resent by its own timer
        member.becomeProbe()
        progress[peer] = member
        sendAppend(to: peer, allowEmpty: true)
    }

    /// Sends an append to every other member (carrying the new commit index even when empty).
    mutating func broadcastAppend() {
        for peer in progress.keys.sorted() { sendAppend(to: peer, allowEmpty: true) }
    }

    /// Before a ready is taken: send what flow control allows of the entries not yet sent.
    mutating func fillPipelines() {
        guard hasUnsentEntries else { return }
        hasUnsentEntries = false
        for peer in progress.keys.sorted() { fillPipeline(peer) }
    }

    mutating func broadcastHeartbeat() {
        let context = pendingReads.isEmpty ? 0 : readRound
        for peer in progress.keys.sorted() {
            send(.heartbeat(commit: heartbeatCommit(for: peer), readContext: context), to: peer)
        }
        sendFarewells()
    }

    /// The commit index a heartbeat tells `peer`: as far as it is known to hold the leader's log.
    /// A member whose log lost what it acknowledged may hold other entries at those indexes (an
    /// older data directory): it is not told they are committed.
    func heartbeatCommit(for peer: String) -> UInt64 {
        guard let member = progress[peer], member.refusalsBelowMatch == 0 else { return 0 }
        return min(member.match, log.committed)
    }

    /// Sends each removed member whose removal has committed the entries through it, as far as
    /// it lacks them (``Departure``).
    private mutating func sendFarewells() {
        for peer in departing.keys.sorted() {
            var departure = departing[peer]!
            guard departure.removalIndex <= log.committed else { continue }
            departure.heartbeatsLeft -= 1
            guard departure.heartbeatsLeft >= 0, departure.match < departure.removalIndex else {
                departing[peer] = nil
                continue
            }
            guard let prevTerm = log.term(at: departure.match) else {
                // Compacted away: it is told in one message instead (a snapshot is not sent).
                send(.removed(index: departure.removalIndex), to: peer)
                departing[peer] = nil
                continue
            }
            departing[peer] = departure
            let entries = log.entries(
                from: departure.match + 1, maxCount: configuration.maxEntriesPerAppend,
                maxBytes: configuration.maxBytesPerAppend
            ).filter { $0.index <= departure.removalIndex }
            send(
                .append(
                    prevIndex: departure.match, prevTerm: prevTerm, entries: entries,
                    commit: departure.match + UInt64(entries.count)),
                to: peer)
        }
    }

    /// A follower in replicate state whose match has not moved for several heartbeat rounds while
    /// entries are owed lost an append: go back to probing.
    mutating func detectStalls() {
        let limit = max(3, configuration.electionTicks / 2)
        for peer in progress.keys {
            guard progress[peer]!.state == .replicate else { continue }
            var member = progress[peer]!
            if member.match < log.lastIndex, member.match == member.matchAtLastRound {
                member.stalledRounds += 1
                if member.stalledRounds >= limit { member.becomeProbe() }
            } else {
                member.stalledRounds = 0
            }
            member.matchAtLastRound = member.match
            progress[peer] = member
        }
    }

    /// Refusals in a row below a member's acknowledged index before the leader reports its log
    /// lost (``RaftLostLog``).
    static let lostLogRefusals = 3

    mutating func handleAppendResponse(
        from peer: String, accepted: Bool, index: UInt64, hintIndex: UInt64, hintTerm: UInt64
    ) {
        if accepted, index > log.lastIndex {
            // No member holds what this leader never had: taken, it would count the member
            // caught up past the log's end and send it a snapshot after every answer.
            disregard(
                from: peer, kind: "appendResponse", term: term, .pastTheLog,
                "it acknowledges index \(index), past this leader's last index \(log.lastIndex)")
            return
        }
        guard var member = progress[peer] else {
            // A removed member's answer to a farewell: how far it has the log now.
            if accepted, var departure = departing[peer] {
                departure.match = max(departure.match, index)
                departing[peer] = departure.match >= departure.removalIndex ? nil : departure
            }
            return
        }
        if accepted {
            member.refusalsBelowMatch = 0
            member.lostLogEnd = nil
            let moved = member.acknowledge(index)
            switch member.state {
            case .probe:
                member.becomeReplicate()
            case .snapshot(let snapshotIndex) where member.match >= snapshotIndex:
                member.becomeReplicate()
            default:
                break
            }
            progress[peer] = member
            if moved, maybeCommit() { broadcastAppend() }
            fillPipeline(peer)
            if transferee == peer, progress[peer]?.match == log.lastIndex {
                send(.timeoutNow, to: peer)
            }
        } else {
            // A refusal of an append at or past what the member acknowledged, whose hint (where
            // its log matches ours at most) is below that: its log lost entries it had made durable.
            // Only a refusal of the append now outstanding counts: not one while a snapshot is on
            // its way, nor a stale one (a duplicate probe's, or one reordered).
            let current =
                switch member.state {
                case .snapshot: false
                case .probe: index == member.next - 1
                case .replicate: index >= member.match
                }
            if current && hintIndex < member.match {
                member.refusalsBelowMatch += 1
                if member.refusalsBelowMatch % Self.lostLogRefusals == 0 {
                    ready.lostLogs.append(RaftLostLog(peer: peer, acknowledged: member.match, lastIndex: hintIndex))
                    member.lostLogEnd = hintIndex
                }
                // Backing off cannot go below what it acknowledged, so an append sent at once would
                // be refused at once, and so on at network speed: probe again at the next heartbeat.
                member.becomeProbe()
                member.probeSent = true
                progress[peer] = member
                return
            }
            var next = hintIndex + 1
            if hintTerm > 0 { next = log.lastIndex(atOrBefore: hintIndex, withTermAtMost: hintTerm) + 1 }
            guard member.backOff(rejected: index, to: next) else { return }
            progress[peer] = member
            sendAppend(to: peer, allowEmpty: true)
        }
    }

    /// Sends to `peer` what flow control allows of the entries it has not been sent.
    private mutating func fillPipeline(_ peer: String) {
        var sent = 0
        while sent < configuration.maxInflightAppends, sendAppend(to: peer, allowEmpty: false) {
            sent += 1
            if progress[peer]?.state != .replicate { break }
        }
    }

    /// Advances the commit index to what a majority of voters has durably (only entries of the
    /// current term count directly). True if it moved.
    mutating func maybeCommit() -> Bool {
        var matches: [UInt64] = []
        for voter in membership.voters.keys {
            matches.append(voter == id ? log.persisted : progress[voter]?.match ?? 0)
        }
        matches.sort(by: >)
        let candidate = matches[membership.quorum - 1]
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        log.committed = candidate
        committedAdvanced()
        return true
    }

    /// After the commit index moved on a leader: serve reads that waited for this term's first
    /// commit, and step down if this leader was removed by a now committed membership change.
    mutating func committedAdvanced() {
        if !readsAwaitingCommit.isEmpty, log.term(at: log.committed) == term {
            let waiting = readsAwaitingCommit
            readsAwaitingCommit = []
            for read in waiting { handleReadRequest(origin: read.origin, context: read.context) }
        }
        if role == .leader, !membership.isVoter(id), membershipIndex <= log.committed {
            becomeFollower(term: term, leader: nil)
        }
    }
}
