import Replication
import Store

/// A whole region in one process: 3 or 5 members running the product's ``Raft`` over a simulated
/// network, clock and disk, with clients writing and reading through it while faults are injected —
/// message loss, duplication, reordering and delay, symmetric and asymmetric partitions, crashes that
/// lose what was not fsynced, pauses, leadership transfers and membership changes. Every random
/// choice comes from one seeded generator, so a seed replays exactly.
///
/// Checked on every step: at most one leader per term, log matching (one entry per index and term,
/// after an entry of one term), one term per committed index, the commit rule against the disks
/// (a majority of voters hold what a leader commits), leader completeness (a new leader holds every
/// committed entry), that no two members ever apply different entries at an index, and that no
/// payload is applied twice in a term. At the end: that the clients' history is linearizable,
/// that the region recovered once healed, and that the members' logs agree (docs/replication.md).
public final class Simulation {
    enum Event {
        case tick(node: String, generation: Int)
        case deliver(RaftMessage, snapshot: KeyValueMachine?)
        case fsync(node: String, generation: Int)
        case fault
        case restart(node: String)
        case resume(node: String, generation: Int)
        case clientNext(client: Int)
        case clientArrive(node: String, client: Int, requestID: UInt64)
        case clientReply(client: Int, requestID: UInt64, attempt: Int, reply: ClientReply)
        case clientTimeout(client: Int, requestID: UInt64, attempt: Int)
        case membershipStep
    }

    enum ClientReply {
        case done(value: String?)
        case retry(leader: String?)
    }

    struct Client {
        var requestID: UInt64 = 0
        var key = ""
        var write: String?
        var attempt = 0
        var target: String
        var historyIndex = -1
        var busy = false
    }

    let options: SimulationOptions
    /// Pre-vote and check-quorum are each off in a quarter of the seeds, so the core protocol is
    /// tested without the guards that usually hide its mistakes.
    var configuration = RaftConfiguration(
        electionTicks: 10, heartbeatTicks: 1, maxInflightAppends: 8, maxEntriesPerAppend: 16)
    var random: SplitMix64
    var queue = EventQueue<Event>()
    var now: UInt64 = 0
    var nodes: [String: SimulatedNode] = [:]
    var nodeIDs: [String] = []
    var clients: [Client] = []
    var history: [RegisterOperation] = []
    var report: SimulationReport
    var nextRequestID: UInt64 = 1
    var nextReadContext: UInt64 = 1
    var nextForwardID: UInt64 = 1
    var nextToken: UInt64 = 1
    var nextValue = 0

    // Faults in force.
    var blocked: Set<String> = []
    var lossRate = 0.0
    var duplicateRate = 0.0
    /// Members whose disk is slow (an fsync takes 5–60 ms), until when.
    var slowDisks: [String: UInt64] = [:]
    /// A power cut waits for a leader's next commit; once one came, it strikes after the event.
    var powerCutArmed = false
    var powerCutDue = false

    // What the checks remember.
    var leaders: [UInt64: String] = [:]
    /// Every entry any member appended, by (index, term): log matching says there is one each.
    var entriesSeen: [EntryKey: LogEntry] = [:]
    /// The term at index - 1 of every (index, term) any member appended: log matching says one.
    var termsBefore: [EntryKey: UInt64] = [:]
    /// Every entry any member applied, by index.
    var committedEntries: [UInt64: LogEntry] = [:]
    /// The term of every index any member counted as committed, applied or not.
    var committedTerms: [UInt64: UInt64] = [:]
    /// Where each payload's token was applied first (index, term).
    var appliedTokens: [UInt64: EntryKey] = [:]
    var lastWriteAt: UInt64 = 0
    var membershipPhase = 0
    var retiring: (id: String, index: UInt64)?
    var retired: Set<String> = []

    struct EntryKey: Hashable {
        var index: UInt64
        var term: UInt64
    }

    static let tickInterval: UInt64 = 10_000
    static let clientTimeout: UInt64 = 150_000

    public static func run(_ options: SimulationOptions) -> SimulationReport {
        let simulation = Simulation(options)
        simulation.execute()
        return simulation.report
    }

    init(_ options: SimulationOptions) {
        self.options = options
        random = SplitMix64(seed: options.seed &* 0x2545_F491_4F6C_DD1D &+ 1)
        report = SimulationReport(seed: options.seed, nodes: options.nodes)
        configuration.preVote = random.next() % 4 != 0
        configuration.checkQuorum = random.next() % 4 != 0
        nodeIDs = (1...options.nodes).map { "n\($0)" }
        var voters: [String: String] = [:]
        for id in nodeIDs { voters[id] = "sim:\(id)" }
        for id in nodeIDs {
            let node = SimulatedNode(id: id, membership: RaftMembership(voters: voters))
            nodes[id] = node
        }
        clients = (0..<options.clients).map { _ in Client(target: "n1") }
    }

    // MARK: - Randomness

    func chance(_ probability: Double) -> Bool {
        Double(random.next() % 1_000_000) / 1_000_000 < probability
    }

    func uniform(_ range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + random.next() % (range.upperBound - range.lowerBound + 1)
    }

    func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }

    func trace(_ line: @autoclosure () -> String) {
        if options.trace { print("[\(now / 1000) ms] \(line())") }
    }

    // MARK: - The run

    func execute() {
        for id in nodeIDs { startNode(id) }
        for client in clients.indices { queue.schedule(.clientNext(client: client), at: uniform(1_000...20_000)) }
        if options.faults { queue.schedule(.fault, at: uniform(100_000...400_000)) }
        if options.membershipChanges { queue.schedule(.membershipStep, at: uniform(500_000...1_500_000)) }
        let end = options.duration + options.settle
        var healed = false
        while let (time, event) = queue.pop() {
            if time > end { break }
            now = time
            if !healed, time >= options.duration {
                healed = true
                healEverything()
            }
            report.events += 1
            handle(event)
            if powerCutDue {
                powerCutDue = false
                cutThePower()
            }
            if report.violations.count > 5 { break }
        }
        finish()
    }

    func startNode(_ id: String) {
        let node = nodes[id]!
        let position = UInt64(nodeIDs.firstIndex(of: id) ?? nodeIDs.count)
        node.start(
            configuration: configuration,
            seed: options.seed ^ (position &* 104_729) ^ (UInt64(node.generation) &* 7_919))
        // Entries committed before the restart are applied again on top of the snapshot.
        drain(node)
        queue.schedule(.tick(node: id, generation: node.generation), at: now + uniform(1...Self.tickInterval))
    }

    func handle(_ event: Event) {
        switch event {
        case .tick(let id, let generation):
            guard let node = nodes[id], node.generation == generation, node.isUp else { return }
            queue.schedule(.tick(node: id, generation: generation), at: now + Self.tickInterval)
            guard !node.paused else { return }
            node.raft!.tick()
            resendForwards(from: node)
            drain(node)
        case .deliver(let message, let snapshot):
            guard let node = nodes[message.to], node.isUp, !blocked.contains(link(message.from, message.to)) else {
                return
            }
            if node.paused {
                node.inbox.append((message, snapshot))
                return
            }
            receive(message, snapshot: snapshot, at: node)
        case .fsync(let id, let generation):
            guard let node = nodes[id], node.generation == generation, node.isUp else { return }
            let (write, problem) = node.completeWrite()
            if let problem { violation(problem) }
            if node.paused {
                node.durableWhilePaused.append(write)
                return
            }
            finishWrite(write, on: node)
        case .fault:
            guard now < options.duration else { return }
            injectFault()
            if now < options.duration { queue.schedule(.fault, at: now + uniform(50_000...500_000)) }
        case .restart(let id):
            guard let node = nodes[id], !node.isUp, !retired.contains(id) else { return }
            trace("\(id) restarts")
            startNode(id)
            // Its announcement, as `RaftConsensus.announce` sends it, reaching the members up now.
            for other in nodes.keys.sorted() where other != id {
                guard let peer = nodes[other], peer.isUp, !peer.paused else { continue }
                peer.raft!.peerIsBack(id)
                drain(peer)
            }
        case .resume(let id, let generation):
            guard let node = nodes[id], node.generation == generation, node.paused else { return }
            trace("\(id) resumes")
            resume(node)
        case .clientNext(let client):
            startOperation(client)
        case .clientArrive(let id, let client, let requestID):
            clientArrives(at: id, client: client, requestID: requestID)
        case .clientReply(let client, let requestID, let attempt, let reply):
            clientReceives(client, requestID: requestID, attempt: attempt, reply: reply)
        case .clientTimeout(let client, let requestID, let attempt):
            guard clients[client].busy, clients[client].requestID == requestID, clients[client].attempt == attempt
            else {
                return
            }
            retry(client, leader: nil)
        case .membershipStep:
            membershipStep()
        }
    }

    /// The process learns that `write` is durable: what waited for it is sent, Raft is told, and
    /// the next write starts.
    func finishWrite(_ write: SimulatedNode.DiskWrite, on node: SimulatedNode) {
        for message in write.messagesAfterPersist { send(message, from: node) }
        if let last = write.entries.last { node.raft!.persisted(through: last.index, term: last.term) }
        node.writing = false
        drain(node)
        startWrite(node)
    }

    /// A paused process runs again: it learns of the writes that became durable meanwhile, then
    /// takes the messages and the client requests that waited for it, in the order they came.
    func resume(_ node: SimulatedNode) {
        node.paused = false
        let durable = node.durableWhilePaused
        node.durableWhilePaused = []
        for write in durable where node.isUp { finishWrite(write, on: node) }
        let waiting = node.inbox
        node.inbox = []
        for (message, snapshot) in waiting where node.isUp { receive(message, snapshot: snapshot, at: node) }
        let requests = node.clientInbox
        node.clientInbox = []
        for request in requests where node.isUp {
            clientArrives(at: node.id, client: request.client, requestID: request.requestID)
        }
    }

    func receive(_ message: RaftMessage, snapshot: KeyValueMachine?, at node: SimulatedNode) {
        if case .snapshot = message.body { node.receivedSnapshot = snapshot }
        node.raft!.step(message)
        drain(node)
    }

    // MARK: - The driver (what the product's driver does, against simulated I/O)

    func drain(_ node: SimulatedNode) {
        while node.isUp, !node.paused {
            let ready = node.raft!.takeReady()
            if ready.isEmpty { break }
            // (Before `observe`, which notes the role this ready leaves: a leader that committed
            // its own removal has stepped down by now.)
            checkCommitted(node)
            observe(node)
            for dropped in ready.disregarded {
                report.messagesDisregarded += 1
                if dropped.cause == .pastTheLog {
                    violation("\(node.id) was sent an acknowledgement: \(dropped.reason)")
                }
            }
            for message in ready.messages { send(message, from: node) }
            if options.flaw == .sendsBeforeSync {
                for message in ready.messagesAfterPersist { send(message, from: node) }
            }
            var write = SimulatedNode.DiskWrite()
            if let meta = ready.snapshot {
                guard let data = node.receivedSnapshot, data.appliedIndex == meta.index else {
                    violation("\(node.id) was told to install snapshot \(meta.index) without its data")
                    return
                }
                node.machine = data
                node.snapshotData = data
                write.snapshot = (meta, data)
                node.readsAwaitingApply.removeAll()
            }
            write.truncateFrom = ready.truncateFrom
            write.entries = ready.entries
            write.hardState = ready.hardState
            write.messagesAfterPersist = options.flaw == .sendsBeforeSync ? [] : ready.messagesAfterPersist
            for entry in ready.entries { checkLogMatching(entry, on: node) }
            if write.snapshot != nil || write.truncateFrom != nil || !write.entries.isEmpty || write.hardState != nil
                || !write.messagesAfterPersist.isEmpty
            {
                node.writeQueue.append(write)
                startWrite(node)
            }
            apply(ready.committed, on: node)
            if powerCutArmed, node.raft?.isLeader == true, !ready.committed.isEmpty { powerCutDue = true }
            for read in ready.reads { readIndexKnown(read, on: node) }
            for answer in ready.forwarded { forwardAnswered(answer, on: node) }
            compactIfDue(node)
        }
    }

    func startWrite(_ node: SimulatedNode) {
        guard !node.writing, !node.writeQueue.isEmpty else { return }
        node.writing = true
        let slow = (slowDisks[node.id] ?? 0) > now
        queue.schedule(
            .fsync(node: node.id, generation: node.generation),
            at: now + (slow ? uniform(5_000...60_000) : uniform(100...3_000)))
    }

    func link(_ from: String, _ to: String) -> String { "\(from)>\(to)" }

    func send(_ message: RaftMessage, from node: SimulatedNode) {
        var snapshot: KeyValueMachine?
        if case .snapshot(let meta) = message.body {
            guard node.snapshotData.appliedIndex == meta.index else {
                violation("\(node.id) sent snapshot \(meta.index) but holds data for \(node.snapshotData.appliedIndex)")
                return
            }
            snapshot = node.snapshotData
            report.snapshotsSent += 1
        }
        if blocked.contains(link(message.from, message.to)) {
            report.messagesBlocked += 1
            return
        }
        if chance(lossRate) {
            report.messagesLost += 1
            return
        }
        let copies = chance(duplicateRate) ? 2 : 1
        if copies == 2 { report.messagesDuplicated += 1 }
        for _ in 0..<copies {
            var delay = uniform(50...2_000)
            if chance(0.05) { delay += uniform(0...30_000) }
            queue.schedule(.deliver(message, snapshot: snapshot), at: now + delay)
        }
    }

    func apply(_ entries: [LogEntry], on node: SimulatedNode) {
        for entry in entries {
            if let known = committedEntries[entry.index] {
                if known != entry {
                    violation(
                        "\(node.id) applied a different entry at \(entry.index) (term \(entry.term), others term \(known.term))"
                    )
                }
            } else {
                committedEntries[entry.index] = entry
                checkAppliedOnce(entry)
            }
            guard entry.index == node.machine.appliedIndex + 1 else {
                violation("\(node.id) applied entry \(entry.index) after \(node.machine.appliedIndex)")
                return
            }
            node.machine.apply(entry)
            report.committedIndex = max(report.committedIndex, entry.index)
            if let pending = node.pendingWrites.removeValue(forKey: entry.index) {
                let write = KeyValueMachine.decode(entry.payload)
                let reply: ClientReply =
                    write?.requestID == pending.requestID ? .done(value: nil) : .retry(leader: node.raft?.leader)
                replyToClient(pending.client, requestID: pending.requestID, reply: reply)
            }
        }
        serveReads(on: node)
    }

    func compactIfDue(_ node: SimulatedNode) {
        guard let raft = node.raft, node.machine.appliedIndex >= raft.snapshotMeta.index + options.snapshotEvery else {
            return
        }
        node.raft!.compact(through: node.machine.appliedIndex)
        let meta = node.raft!.snapshotMeta
        guard meta.index == node.machine.appliedIndex else { return }
        node.snapshotData = node.machine
        var write = SimulatedNode.DiskWrite()
        write.compaction = (meta, node.machine)
        node.writeQueue.append(write)
        startWrite(node)
    }
}
