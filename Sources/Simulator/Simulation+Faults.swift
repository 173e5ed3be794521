import Replication

extension Simulation {
    var liveIDs: [String] { nodeIDs.filter { nodes[$0]!.isUp } }

    func injectFault() {
        switch random.next() % 12 {
        case 0, 1:
            // A symmetric partition: the members split in two sides that cannot talk.
            var shuffled = nodeIDs
            for i in stride(from: shuffled.count - 1, to: 0, by: -1) {
                shuffled.swapAt(i, Int(random.next() % UInt64(i + 1)))
            }
            let cut = 1 + Int(random.next() % UInt64(max(shuffled.count - 1, 1)))
            let left = Array(shuffled[..<cut])
            let right = Array(shuffled[cut...])
            blocked = []
            for a in left {
                for b in right {
                    blocked.insert(link(a, b))
                    blocked.insert(link(b, a))
                }
            }
            report.partitions += 1
            trace("partition \(left.sorted()) | \(right.sorted())")
        case 2:
            // An asymmetric one: a hears nothing from b, but b hears a.
            let a = pick(nodeIDs)
            let b = pick(nodeIDs)
            if a != b {
                blocked.insert(link(b, a))
                report.oneWayCuts += 1
                trace("\(a) stops hearing \(b)")
            }
        case 3, 4:
            blocked = []
            trace("network healed")
        case 5, 6:
            let candidates = liveIDs
            guard !candidates.isEmpty else { return }
            let id = pick(candidates)
            nodes[id]!.crash()
            report.crashes += 1
            trace("\(id) crashes")
            queue.schedule(.restart(node: id), at: now + uniform(20_000...500_000))
        case 7:
            let candidates = liveIDs.filter { !nodes[$0]!.paused }
            guard !candidates.isEmpty else { return }
            let id = pick(candidates)
            nodes[id]!.paused = true
            report.pauses += 1
            trace("\(id) pauses")
            queue.schedule(.resume(node: id, generation: nodes[id]!.generation), at: now + uniform(20_000...500_000))
        case 8:
            lossRate = Double(random.next() % 20) / 100
            duplicateRate = Double(random.next() % 5) / 100
            trace("message loss \(lossRate), duplication \(duplicateRate)")
        case 9:
            lossRate = 0
            duplicateRate = 0
        case 10:
            // Hand leadership to another voter.
            guard let leader = currentLeader(), let raft = leader.raft else { return }
            let voters = raft.membership.voters.keys.sorted().filter { $0 != leader.id }
            guard !voters.isEmpty else { return }
            let target = pick(voters)
            try? leader.raft!.transferLeadership(to: target)
            report.transfers += 1
            trace("\(leader.id) hands leadership to \(target)")
            drain(leader)
        default:
            break
        }
    }

    func healEverything() {
        blocked = []
        lossRate = 0
        duplicateRate = 0
        for id in nodeIDs {
            let node = nodes[id]!
            if !node.isUp, !retired.contains(id) {
                startNode(id)
            } else if node.paused {
                node.paused = false
                let waiting = node.inbox
                node.inbox = []
                for (message, snapshot) in waiting where node.isUp { receive(message, snapshot: snapshot, at: node) }
            }
        }
        trace("everything healed")
    }

    func currentLeader() -> SimulatedNode? {
        var best: SimulatedNode?
        for id in nodeIDs {
            let node = nodes[id]!
            guard let raft = node.raft, raft.isLeader, !node.paused else { continue }
            if best == nil || raft.term > best!.raft!.term { best = node }
        }
        return best
    }

    /// Adds a member as a learner, promotes it, then removes another voter — one change at a time.
    func membershipStep() {
        if retiring != nil { retireIfCommitted() }
        guard membershipPhase < 3 || retiring != nil, now < options.duration else { return }
        queue.schedule(.membershipStep, at: now + uniform(200_000...600_000))
        guard membershipPhase < 3 else { return }
        guard let leader = currentLeader() else { return }
        let newID = "n\(options.nodes + 1)"
        do {
            switch membershipPhase {
            case 0:
                // Proposed first: a refused change (a leader yet to commit in its term) adds no node.
                _ = try leader.raft!.proposeMembership(.addLearner(id: newID, address: "sim:\(newID)"))
                let node = SimulatedNode(joining: newID)
                nodes[newID] = node
                nodeIDs.append(newID)
                startNode(newID)
                trace("\(leader.id) adds learner \(newID)")
            case 1:
                guard leader.raft!.membership.learners[newID] != nil else { return }
                _ = try leader.raft!.proposeMembership(.promote(id: newID))
                trace("\(leader.id) promotes \(newID)")
            default:
                let voters = leader.raft!.membership.voters.keys.sorted()
                guard voters.contains(newID) else { return }
                let victim = pick(voters.filter { $0 != newID })
                let index = try leader.raft!.proposeMembership(.remove(id: victim))
                trace("\(leader.id) removes \(victim) at \(index)")
                retiring = (victim, index)
            }
            membershipPhase += 1
            report.membershipChanges += 1
            drain(leader)
        } catch {
            trace("membership change refused: \(error)")
        }
    }

    /// Once the removal of a member is committed, that member is shut down for good.
    func retireIfCommitted() {
        guard let (id, index) = retiring, let leader = currentLeader(), leader.raft!.committed >= index,
            leader.raft!.entry(at: index)?.kind == .membership
        else { return }
        retiring = nil
        retired.insert(id)
        nodes[id]!.crash()
        trace("\(id) leaves the region")
    }
}
