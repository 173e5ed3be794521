import Replication
import Store

/// One member of the simulated region: its Raft state machine, what its "disk" holds durably,
/// the writes not yet fsynced (lost in a crash), its applied state and its pending client work.
final class SimulatedNode {
    let id: String
    var raft: Raft?
    var paused = false
    /// Bumped on every crash, so events meant for the old process are dropped.
    var generation = 0
    var inbox: [(message: RaftMessage, snapshot: KeyValueMachine?)] = []
    /// While paused: client requests that reached it, and writes that became durable (the disk
    /// goes on; the process learns of it when it resumes).
    var clientInbox: [(client: Int, requestID: UInt64)] = []
    var durableWhilePaused: [DiskWrite] = []

    // Durable.
    var diskHardState: HardState
    var diskSnapshot: RaftSnapshotMeta
    var diskSnapshotData = KeyValueMachine()
    var diskEntries: [LogEntry]

    // Volatile.
    var writeQueue: [DiskWrite] = []
    var writing = false
    var machine = KeyValueMachine()
    var snapshotData = KeyValueMachine()
    var receivedSnapshot: KeyValueMachine?
    var pendingWrites: [UInt64: (client: Int, requestID: UInt64)] = [:]
    var pendingReads: [UInt64: (client: Int, requestID: UInt64, key: String)] = [:]
    /// Writes this follower forwarded to the leader, by forward id, until the leader answers
    /// (sent again, under the same id, while it does not: as the product's followers do).
    var pendingForwards: [UInt64: PendingForward] = [:]
    /// How far this process's commit index was checked (``Simulation/checkCommitted(_:)``).
    var checkedCommit: UInt64 = 0

    struct PendingForward {
        var client: Int
        var requestID: UInt64
        var payload: [UInt8]
        var sentAt: UInt64
    }
    var readsAwaitingApply: [(index: UInt64, context: UInt64)] = []
    var observedRole: RaftRole = .follower
    var observedTerm: UInt64 = 0

    /// One ready's worth of writes, made durable together by one fsync.
    struct DiskWrite {
        var snapshot: (meta: RaftSnapshotMeta, data: KeyValueMachine)?
        var compaction: (meta: RaftSnapshotMeta, data: KeyValueMachine)?
        var truncateFrom: UInt64?
        var entries: [LogEntry] = []
        var hardState: HardState?
        var messagesAfterPersist: [RaftMessage] = []
    }

    init(id: String, membership: RaftMembership) {
        self.id = id
        // A new region: every member starts with the same first entry, the initial membership.
        diskHardState = HardState(term: 1, vote: nil, commit: 0)
        diskSnapshot = RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership())
        diskEntries = [LogEntry(index: 1, term: 1, kind: .membership, payload: membership.encoded())]
    }

    /// A node added later starts empty and learns everything from the leader.
    init(joining id: String) {
        self.id = id
        diskHardState = HardState()
        diskSnapshot = RaftSnapshotMeta(index: 0, term: 0, membership: RaftMembership())
        diskEntries = []
    }

    var isUp: Bool { raft != nil }

    /// Starts the process from what is on disk.
    func start(configuration: RaftConfiguration, seed: UInt64) {
        raft = Raft(
            id: id, configuration: configuration, seed: seed, hardState: diskHardState, snapshot: diskSnapshot,
            entries: diskEntries)
        machine = diskSnapshotData
        snapshotData = diskSnapshotData
        checkedCommit = 0
        observedRole = .follower
        observedTerm = diskHardState.term
    }

    /// Kills the process: everything not fsynced is gone.
    func crash() {
        raft = nil
        generation += 1
        writeQueue = []
        writing = false
        inbox = []
        clientInbox = []
        durableWhilePaused = []
        paused = false
        receivedSnapshot = nil
        pendingWrites = [:]
        pendingReads = [:]
        pendingForwards = [:]
        readsAwaitingApply = []
    }

    /// Whether the disk holds the entry at `index` of `term`, or a snapshot past it.
    func durablyHolds(_ index: UInt64, term: UInt64) -> Bool {
        if index < diskSnapshot.index { return true }
        if index == diskSnapshot.index { return diskSnapshot.term == term }
        let position = Int(index - diskSnapshot.index - 1)
        return position < diskEntries.count && diskEntries[position].term == term
    }

    /// Makes the oldest queued write durable; the problem, if the write leaves a gap in the log
    /// (reported as a violation, where a trap would lose the seed).
    func completeWrite() -> (DiskWrite, problem: String?) {
        var problem: String?
        let write = writeQueue.removeFirst()
        if let snapshot = write.snapshot {
            diskSnapshot = snapshot.meta
            diskSnapshotData = snapshot.data
            diskEntries = []
        }
        if let truncateFrom = write.truncateFrom {
            diskEntries.removeAll { $0.index >= truncateFrom }
        }
        if let first = write.entries.first {
            diskEntries.removeAll { $0.index >= first.index }
            let expected = (diskEntries.last?.index ?? diskSnapshot.index) + 1
            if first.index == expected {
                diskEntries.append(contentsOf: write.entries)
            } else {
                problem = "\(id) wrote entry \(first.index) to a log that ends at \(expected - 1)"
            }
        }
        if let hardState = write.hardState { diskHardState = hardState }
        if let compaction = write.compaction, compaction.meta.index > diskSnapshot.index {
            diskEntries.removeAll { $0.index <= compaction.meta.index }
            diskSnapshot = compaction.meta
            diskSnapshotData = compaction.data
        }
        return (write, problem)
    }
}
