import Replication

extension Simulation {
    var liveIDs: [String] { nodeIDs.filter { nodes[$0]!.isUp } }

    func injectFault() {
        switch random.next() % 13 {
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
            // Half the crashes strike a member with a write in flight, when a crash loses most.
            let writing = liveIDs.filter { nodes[$0]!.writing }
            let candidates = !writing.isEmpty && chance(0.5) ? writing : liveIDs
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
        case 11:
            // A disk slows down for a while: its fsyncs take 5–60 ms, so what the member has
            // promised (with a correct driver, nothing) waits long for the disk.
            let id = pick(nodeIDs)
            slowDisks[id] = now + uniform(100_000...1_000_000)
            report.slowDisks += 1
            trace("\(id)'s disk slows down")
        case 12:
            // A power cut, armed: it strikes the moment a leader next commits (the worst moment,
            // when a promise a member broke would show).
            powerCutArmed = true
            trace("a power cut is armed")
        default:
            break
        }
    }

    /// Every member goes down at once, each losing what it had not fsynced; they come back one
    /// by one.
    func cutThePower() {
        powerCutArmed = false
        let down = liveIDs
        for id in down {
            nodes[id]!.crash()
            report.crashes += 1
            queue.schedule(.restart(node: id), at: now + uniform(20_000...500_000))
        }
        report.powerCuts += 1
        trace("power cut: \(down.sorted()) go down")
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
                resume(node)
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
