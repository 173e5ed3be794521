import Store

extension Raft {
    /// Handles one message from a peer.
    public mutating func step(_ message: RaftMessage) {
        guard message.to == id, message.from != id else { return }
        if message.largestIndex > Self.largestAccepted {
            disregard(
                message, .outOfRange,
                "it carries log index \(message.largestIndex), past the largest taken, \(Self.largestAccepted)")
            return
        }
        if message.carriesLaterTerm {
            disregard(message, .outOfRange, "it carries an entry or a snapshot of a later term than its own")
            return
        }
        if case .removed(let index) = message.body {
            // A fact about the region's committed log, whatever the sender's term: not a reason to
            // take that term (this member may have campaigned past it while cut off). Only from a
            // member, or from the leader this member follows (one added while it was behind is
            // in no membership it holds yet): trusted as far as that leader's appends are.
            guard membership.contains(message.from) || (message.from == leader && message.term >= term) else {
                disregard(message, .notAMember, "\(message.from) is not a member")
                return
            }
            noteRemoval(at: index)
            return
        }
        if message.body.isAnswer, !membership.contains(message.from), departing[message.from] == nil {
            // This member asks only members (and a leader the members it is removing); an answer
            // from anyone else, of a later term, would make it take that term.
            disregard(message, .notAMember, "\(message.from) is not a member")
            return
        }
        if message.term > term, role == .leader, !membership.contains(message.from) {
            // A node this leader does not count a member (one it removed) does not unseat it. One
            // still campaigning did not hear of its removal: it is told (again).
            if case .preVote(let lastIndex, let lastTerm) = message.body {
                sayFarewell(to: message.from, matchingAt: lastIndex, term: lastTerm, campaigningIn: message.term)
                send(.preVoteResponse(granted: false), to: message.from)
            } else {
                departing[message.from] = nil
            }
            return
        }
        // Past the ceiling, a term is taken one step at a time.
        let ceiling = max(Self.largestAccepted, term + 1)
        if message.term > ceiling {
            climbTerm(to: ceiling, toward: message)
            return
        }
        if message.term > term {
            guard stepHigherTerm(message) else { return }
        } else if message.term < term {
            stepLowerTerm(message)
            return
        }
        if role == .leader, progress[message.from] != nil {
            progress[message.from]!.recentlyActive = true
            progress[message.from]!.silentTicks = 0
        }

        switch message.body {
        case .preVote:
            // Only reached when the pre-vote is for a term not above ours: never granted.
            send(.preVoteResponse(granted: false), to: message.from)
        case .vote(let lastIndex, let lastTerm, _):
            let canVote = vote == message.from || (vote == nil && leader == nil)
            let granted = canVote && isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
            if granted {
                vote = message.from
                electionElapsed = 0
            }
            send(.voteResponse(granted: granted), to: message.from)
        case .preVoteResponse(let granted):
            if role == .preCandidate { tally(message.from, granted: granted) }
        case .voteResponse(let granted):
            if role == .candidate { tally(message.from, granted: granted) }
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            followLeader(message.from)
            handleAppend(from: message.from, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit)
        case .heartbeat(let commit, let readContext):
            followLeader(message.from)
            let safeCommit = min(commit, log.lastIndex)
            if safeCommit > log.committed { log.committed = safeCommit }
            send(.heartbeatResponse(readContext: readContext), to: message.from)
        case .snapshot(let meta):
            followLeader(message.from)
            handleSnapshot(from: message.from, meta)
        case .timeoutNow:
            if isPromotable, role != .leader { campaign(preVote: false, transfer: true) }
        case .appendResponse(let accepted, let index, let hintIndex, let hintTerm):
            if role == .leader {
                handleAppendResponse(
                    from: message.from, accepted: accepted, index: index, hintIndex: hintIndex, hintTerm: hintTerm)
            }
        case .heartbeatResponse(let readContext):
            if role == .leader { handleHeartbeatResponse(from: message.from, readContext: readContext) }
        case .readIndex(let context):
            if role == .leader {
                handleReadRequest(origin: message.from, context: context)
            } else {
                send(.readIndexResponse(context: context, index: 0), to: message.from)
            }
        case .readIndexResponse(let context, let index):
            ready.reads.append(RaftReadState(context: context, index: index == 0 ? nil : index))
        case .propose(let requestID, let payloads):
            handleForwardedProposal(from: message.from, id: requestID, payloads: payloads)
        case .proposeResponse(let requestID, let index):
            ready.forwarded.append(
                RaftForwardedProposal(
                    id: requestID, firstIndex: index == 0 ? nil : index, term: message.term, from: message.from))
        case .proposeRefused(let requestID):
            ready.forwarded.append(
                RaftForwardedProposal(
                    id: requestID, firstIndex: nil, term: message.term, from: message.from, refusedForGood: true))
        case .removed:
            break  // Taken before the term checks.
        }
    }

    mutating func disregard(_ message: RaftMessage, _ cause: RaftDisregarded.Cause, _ reason: String) {
        disregard(from: message.from, kind: message.body.name, term: message.term, cause, reason)
    }

    mutating func disregard(
        from sender: String, kind: String, term: UInt64, _ cause: RaftDisregarded.Cause, _ reason: String
    ) {
        ready.disregarded.append(RaftDisregarded(from: sender, kind: kind, term: term, cause: cause, reason: reason))
    }

    /// A message of a term past ``largestAccepted`` and more than one above this member's: past
    /// that ceiling terms are taken one step at a time, so that no one message (a forged one, on a
    /// plain-TCP port) takes the region's terms to the last, ``largestTerm``, where no member
    /// could campaign again. The member moves to `next` (the ceiling, or one term up once past
    /// it), as a message of that term would move it, and drops the message. Members that reached
    /// such terms by elections bring one that lags along in as many messages as it lags terms.
    private mutating func climbTerm(to next: UInt64, toward message: RaftMessage) {
        disregard(
            message, .outOfRange,
            "its term is past \(Self.largestAccepted) and more than one above this member's \(term): it moves to \(next) instead"
        )
        switch message.body {
        case .preVote, .preVoteResponse:
            return  // A pre-vote, or its answer, never changes a term.
        case .vote(_, _, let transfer) where inLease && !transfer:
            return
        default:
            becomeFollower(term: next, leader: nil)
        }
    }

    /// A message from a later term. Returns whether to go on handling it.
    private mutating func stepHigherTerm(_ message: RaftMessage) -> Bool {
        switch message.body {
        case .preVote(let lastIndex, let lastTerm):
            // A pre-vote never changes our term; the lease protects a leader we still hear from.
            let granted = !inLease && isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
            send(.preVoteResponse(granted: granted), to: message.from, term: granted ? message.term : term)
            return false
        case .preVoteResponse(true):
            // The echo of the term we would campaign in.
            if role == .preCandidate, message.term == term + 1 { tally(message.from, granted: true) }
            return false
        case .vote(_, _, let transfer):
            if inLease, !transfer { return false }
            becomeFollower(term: message.term, leader: nil)
            return true
        case .append, .heartbeat, .snapshot:
            becomeFollower(term: message.term, leader: message.from)
            return true
        default:
            becomeFollower(term: message.term, leader: nil)
            return true
        }
    }

    /// A message from an earlier term: tell a stale leader or candidate about the current term
    /// (so a node that was cut off steps down instead of disrupting the group); drop the rest.
    private mutating func stepLowerTerm(_ message: RaftMessage) {
        switch message.body {
        case .append, .heartbeat, .snapshot:
            send(.appendResponse(accepted: false, index: 0, hintIndex: 0, hintTerm: 0), to: message.from)
        case .preVote:
            send(.preVoteResponse(granted: false), to: message.from)
        case .propose(let requestID, _):
            // Refused at once (the answer carries our term), rather than left to time out.
            send(.proposeResponse(id: requestID, index: 0), to: message.from)
        default:
            break
        }
    }

    /// A follower that heard from its leader within the election timeout ignores vote requests.
    var inLease: Bool {
        configuration.checkQuorum && leader != nil && electionElapsed < configuration.electionTicks
    }

    func isUpToDate(lastIndex: UInt64, lastTerm: UInt64) -> Bool {
        lastTerm > log.lastTerm || (lastTerm == log.lastTerm && lastIndex >= log.lastIndex)
    }

    mutating func followLeader(_ from: String) {
        if role != .follower || leader != from {
            if role != .follower { becomeFollower(term: term, leader: from) }
            leader = from
            ready.statusChanged = true
        }
        electionElapsed = 0
    }

    // MARK: - Roles

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: String?) {
        if role == .leader { failPendingReads() }
        if newTerm != term {
            term = newTerm
            vote = nil
        }
        role = .follower
        leader = newLeader
        forgetFollowers()
        votes = [:]
        transferee = nil
        resetElectionTimer()
        ready.statusChanged = true
    }

    /// Starts an election: first a pre-vote round (no term change) if configured, then the vote.
    mutating func campaign(preVote: Bool, transfer: Bool) {
        // Terms are kept as signed 64-bit numbers in the views and on the wire. Messages never
        // bring the term past `largestAccepted`, so only 2^32 elections after it end here.
        guard term < Self.largestTerm else {
            resetElectionTimer()
            return
        }
        let campaignTerm: UInt64
        if preVote {
            role = .preCandidate
            campaignTerm = term + 1
        } else {
            role = .candidate
            term += 1
            vote = id
            campaignTerm = term
            electionsStarted += 1
        }
        leader = nil
        votes = [id: true]
        forgetFollowers()
        resetElectionTimer()
        ready.statusChanged = true
        if wonElection() {
            if preVote { campaign(preVote: false, transfer: transfer) } else { becomeLeader() }
            return
        }
        for voter in membership.voters.keys.sorted() where voter != id {
            if preVote {
                send(.preVote(lastIndex: log.lastIndex, lastTerm: log.lastTerm), to: voter, term: campaignTerm)
            } else {
                send(.vote(lastIndex: log.lastIndex, lastTerm: log.lastTerm, transfer: transfer), to: voter)
            }
        }
    }

    private func wonElection() -> Bool {
        membership.voters.keys.filter { votes[$0] == true }.count >= membership.quorum
    }

    private func lostElection() -> Bool {
        membership.voters.keys.filter { votes[$0] == false }.count >= membership.quorum
    }

    private mutating func tally(_ from: String, granted: Bool) {
        guard membership.isVoter(from), votes[from] == nil else { return }
        votes[from] = granted
        if wonElection() {
            if role == .preCandidate { campaign(preVote: false, transfer: false) } else { becomeLeader() }
        } else if lostElection() {
            becomeFollower(term: term, leader: nil)
        }
    }

    mutating func becomeLeader() {
        role = .leader
        leader = id
        votes = [:]
        leadingTicks = 0
        heartbeatElapsed = 0
        electionElapsed = 0
        transferee = nil
        forwardsTaken = [:]
        forgetFollowers()
        syncProgressWithMembership()
        for member in progress.keys { progress[member]!.recentlyActive = true }
        ready.statusChanged = true
        // An entry of its own term lets the new leader commit (and serve reads) at once.
        appendAsLeader([LogEntry(index: 0, term: term, kind: .noop, payload: [])])
        broadcastAppend()
    }

    /// Whether a majority of voters was heard from since the last check; starts a new period.
    mutating func quorumRecentlyActive() -> Bool {
        let active = membership.voters.keys.filter { $0 == id || progress[$0]?.recentlyActive == true }.count
        for member in progress.keys { progress[member]!.recentlyActive = false }
        return active >= membership.quorum
    }
}
