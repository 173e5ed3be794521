extension Raft {
    /// Asks for a linearizable read index under `context` (the caller's id for the request). The
    /// answer comes in a ready's `reads`: serve the read once the applied index reaches it.
    public mutating func readIndex(context: UInt64) {
        if role == .leader {
            handleReadRequest(origin: id, context: context)
        } else if let leader {
            send(.readIndex(context: context), to: leader)
        } else {
            ready.reads.append(RaftReadState(context: context, index: nil))
        }
    }

    /// ReadIndex on the leader: note the commit index, confirm with a quorum that this node still
    /// leads (a heartbeat round), then answer with it.
    mutating func handleReadRequest(origin: String, context: UInt64) {
        guard log.term(at: log.committed) == term else {
            // Until an entry of its own term commits, a new leader does not know the commit index.
            readsAwaitingCommit.append((origin, context))
            return
        }
        if membership.voters.count == 1, membership.isVoter(id) {
            answerRead(origin: origin, context: context, index: log.committed)
            return
        }
        readRound += 1
        pendingReads.append(
            PendingRead(round: readRound, origin: origin, context: context, index: log.committed, acks: [id]))
        for peer in progress.keys.sorted() where membership.isVoter(peer) {
            send(.heartbeat(commit: heartbeatCommit(for: peer), readContext: readRound), to: peer)
        }
    }

    mutating func handleHeartbeatResponse(from peer: String, readContext: UInt64) {
        guard var member = progress[peer] else { return }
        member.probeSent = false
        progress[peer] = member
        // Behind: send what it lacks, or, if nothing new is due (a member just added starts at the
        // leader's last index), an empty probe that finds where its log ends.
        if member.match < log.lastIndex { sendAppend(to: peer, allowEmpty: true) }
        guard readContext > 0, membership.isVoter(peer) else { return }
        for position in pendingReads.indices where pendingReads[position].round <= readContext {
            pendingReads[position].acks.insert(peer)
        }
        while let first = pendingReads.first,
            first.acks.filter({ membership.isVoter($0) }).count >= membership.quorum
        {
            pendingReads.removeFirst()
            answerRead(origin: first.origin, context: first.context, index: first.index)
        }
    }

    private mutating func answerRead(origin: String, context: UInt64, index: UInt64) {
        if origin == id {
            ready.reads.append(RaftReadState(context: context, index: index))
        } else {
            send(.readIndexResponse(context: context, index: index), to: origin)
        }
    }

    /// A leader stepping down fails the reads it holds; their callers ask again.
    mutating func failPendingReads() {
        let failed = pendingReads.map { ($0.origin, $0.context) } + readsAwaitingCommit.map { ($0.origin, $0.context) }
        pendingReads = []
        readsAwaitingCommit = []
        for (origin, context) in failed {
            if origin == id {
                ready.reads.append(RaftReadState(context: context, index: nil))
            } else {
                send(.readIndexResponse(context: context, index: 0), to: origin)
            }
        }
    }
}
