import Replication

extension Simulation {
    static let keys = ["a", "b"]

    func startOperation(_ index: Int) {
        guard now < options.duration + options.settle - Self.clientTimeout else { return }
        var client = clients[index]
        client.requestID = nextRequestID
        nextRequestID += 1
        client.key = pick(Self.keys)
        client.attempt = 0
        client.busy = true
        if chance(0.4) {
            nextValue += 1
            client.write = "v\(nextValue)"
        } else {
            client.write = nil
        }
        client.historyIndex = history.count
        history.append(
            RegisterOperation(
                client: index, key: client.key, kind: client.write.map { .write(value: $0) } ?? .read(value: nil),
                invokedAt: now, returnedAt: nil))
        clients[index] = client
        dispatch(index)
    }

    func dispatch(_ index: Int) {
        let client = clients[index]
        queue.schedule(
            .clientArrive(node: client.target, client: index, requestID: client.requestID), at: now + uniform(100...500)
        )
        queue.schedule(
            .clientTimeout(client: index, requestID: client.requestID, attempt: client.attempt),
            at: now + Self.clientTimeout)
    }

    func retry(_ index: Int, leader: String?) {
        clients[index].attempt += 1
        if let leader, nodes[leader] != nil {
            clients[index].target = leader
        } else {
            clients[index].target = pick(nodeIDs.filter { !retired.contains($0) })
        }
        if clients[index].attempt > 30 {
            // The client gives up; a write's outcome stays unknown.
            clients[index].busy = false
            queue.schedule(.clientNext(client: index), at: now + uniform(1_000...20_000))
            return
        }
        let client = clients[index]
        let pause: UInt64 = leader == nil ? uniform(5_000...20_000) : uniform(200...1_000)
        queue.schedule(.clientArrive(node: client.target, client: index, requestID: client.requestID), at: now + pause)
        queue.schedule(
            .clientTimeout(client: index, requestID: client.requestID, attempt: client.attempt),
            at: now + pause + Self.clientTimeout)
    }

    /// A client's request reaches a member: lost if it is down, taken when it resumes if it is
    /// paused (a stopped process still has the request in its socket).
    func clientArrives(at id: String, client index: Int, requestID: UInt64) {
        guard let node = nodes[id], node.isUp else { return }
        if node.paused {
            node.clientInbox.append((index, requestID))
            return
        }
        let client = clients[index]
        guard client.busy, client.requestID == requestID else { return }
        if let value = client.write {
            guard node.raft!.isLeader else {
                // Half the time a follower forwards the write to the leader (as the product's
                // followers do); otherwise it tells the client where the leader is.
                if node.raft!.leader != nil, chance(0.5) {
                    let id = nextForwardID
                    nextForwardID += 1
                    let payload = KeyValueMachine.payload(
                        requestID: requestID, key: client.key, value: value, token: takeToken())
                    if (try? node.raft!.forward([payload], id: id)) != nil {
                        node.pendingForwards[id] = SimulatedNode.PendingForward(
                            client: index, requestID: requestID, payload: payload, sentAt: now)
                        drain(node)
                        return
                    }
                }
                replyToClient(index, requestID: requestID, reply: .retry(leader: node.raft!.leader))
                return
            }
            do {
                let range = try node.raft!.propose([
                    KeyValueMachine.payload(requestID: requestID, key: client.key, value: value, token: takeToken())
                ])
                node.pendingWrites[range.lowerBound] = (index, requestID)
            } catch let error as ReplicationError {
                replyToClient(index, requestID: requestID, reply: .retry(leader: error.leader))
            } catch {
                replyToClient(index, requestID: requestID, reply: .retry(leader: nil))
            }
        } else if options.flaw == .readsLocally {
            // The flaw: the node answers from its own state, without asking the leader.
            replyToClient(index, requestID: requestID, reply: .done(value: node.machine.values[client.key]))
        } else {
            let context = nextReadContext
            nextReadContext += 1
            node.pendingReads[context] = (index, requestID, client.key)
            node.raft!.readIndex(context: context)
        }
        drain(node)
    }

    func takeToken() -> UInt64 {
        defer { nextToken += 1 }
        return nextToken
    }

    /// Sends again, under the same id, what this follower forwarded and the leader has not
    /// answered for 100 ms (the product's `resendUnansweredForwards`, after 500 ms there: here
    /// within a client's 150 ms timeout, so that resends happen): the leader must not append
    /// it twice. Given up once its client moved on.
    func resendForwards(from node: SimulatedNode) {
        for id in node.pendingForwards.keys.sorted() {
            let pending = node.pendingForwards[id]!
            guard clients[pending.client].busy, clients[pending.client].requestID == pending.requestID else {
                node.pendingForwards[id] = nil
                continue
            }
            guard now - pending.sentAt >= Self.forwardResendAfter else { continue }
            var resendID = id
            if options.flaw == .forwardsAgainUnderNewID {
                resendID = nextForwardID
                nextForwardID += 1
                node.pendingForwards[id] = nil
            }
            guard (try? node.raft!.forward([pending.payload], id: resendID)) != nil else { continue }
            report.forwardsResent += 1
            var resent = pending
            resent.sentAt = now
            node.pendingForwards[resendID] = resent
        }
    }

    static let forwardResendAfter: UInt64 = 100_000

    /// The leader said where a forwarded write landed (or refused it).
    func forwardAnswered(_ answer: RaftForwardedProposal, on node: SimulatedNode) {
        guard let pending = node.pendingForwards.removeValue(forKey: answer.id) else { return }
        guard let first = answer.firstIndex else {
            replyToClient(pending.client, requestID: pending.requestID, reply: .retry(leader: node.raft?.leader))
            return
        }
        report.forwardedWrites += 1
        if first <= node.machine.appliedIndex {
            // Applied here before the answer came: it is the client's if the entry carries its request.
            let applied = node.raft!.entry(at: first).flatMap { KeyValueMachine.decode($0.payload) }
            let reply: ClientReply =
                applied?.requestID == pending.requestID ? .done(value: nil) : .retry(leader: node.raft?.leader)
            replyToClient(pending.client, requestID: pending.requestID, reply: reply)
        } else {
            node.pendingWrites[first] = (pending.client, pending.requestID)
        }
    }

    func readIndexKnown(_ read: RaftReadState, on node: SimulatedNode) {
        guard let pending = node.pendingReads[read.context] else { return }
        guard let index = read.index else {
            node.pendingReads[read.context] = nil
            replyToClient(pending.client, requestID: pending.requestID, reply: .retry(leader: node.raft?.leader))
            return
        }
        node.readsAwaitingApply.append((index, read.context))
        serveReads(on: node)
    }

    func serveReads(on node: SimulatedNode) {
        var waiting: [(index: UInt64, context: UInt64)] = []
        for read in node.readsAwaitingApply {
            guard read.index <= node.machine.appliedIndex else {
                waiting.append(read)
                continue
            }
            guard let pending = node.pendingReads.removeValue(forKey: read.context) else { continue }
            replyToClient(
                pending.client, requestID: pending.requestID, reply: .done(value: node.machine.values[pending.key]))
        }
        node.readsAwaitingApply = waiting
    }

    func replyToClient(_ index: Int, requestID: UInt64, reply: ClientReply) {
        queue.schedule(
            .clientReply(client: index, requestID: requestID, attempt: clients[index].attempt, reply: reply),
            at: now + uniform(100...500))
    }

    func clientReceives(_ index: Int, requestID: UInt64, attempt: Int, reply: ClientReply) {
        var client = clients[index]
        guard client.busy, client.requestID == requestID else { return }
        switch reply {
        case .done(let value):
            history[client.historyIndex].returnedAt = now
            if client.write == nil {
                history[client.historyIndex].kind = .read(value: value)
            } else {
                lastWriteAt = now
            }
            report.completedOperations += 1
            client.busy = false
            clients[index] = client
            queue.schedule(.clientNext(client: index), at: now + uniform(1_000...20_000))
        case .retry(let leader):
            guard attempt == client.attempt else { return }
            retry(index, leader: leader)
        }
    }
}
