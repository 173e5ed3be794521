/// What one simulation run does. Everything random in the run is drawn from `seed`.
public struct SimulationOptions: Sendable {
    public var seed: UInt64
    /// Voters in the region (3 or 5).
    public var nodes: Int
    /// Virtual time with faults, in microseconds; the run then heals everything and goes on for `settle`.
    public var duration: UInt64
    public var settle: UInt64
    public var clients: Int
    public var faults: Bool
    /// Each node snapshots its state machine and compacts its log every this many applied entries.
    public var snapshotEvery: UInt64
    /// Add a learner, promote it and remove a voter during the run.
    public var membershipChanges: Bool
    /// Print every fault and role change (for replaying a failing seed).
    public var trace: Bool
    /// A flaw put in the driver on purpose, to show that the checks catch what it breaks; nil
    /// (the default, and every real run) drives Raft as the product does.
    public var flaw: Flaw?

    /// Flaws the simulator can put in the driver (never in the product).
    public enum Flaw: String, Sendable, CaseIterable {
        /// Reads are answered from the node's own state, without a read index: the stale reads
        /// that linearizable reads exist to prevent.
        case readsLocally = "reads-locally"
        /// Messages that must wait for the node's write (votes, append acknowledgements) are sent
        /// at once, beside it: a crash before the fsync then breaks a promise the node made.
        case sendsBeforeSync = "sends-before-sync"
        /// A forward the leader has not answered is sent again under a new id, which the leader
        /// cannot tell from a new proposal: it may append the payload twice.
        case forwardsAgainUnderNewID = "forwards-again-under-new-id"
    }

    public init(
        seed: UInt64, nodes: Int = 3, duration: UInt64 = 3_000_000, settle: UInt64 = 2_000_000, clients: Int = 5,
        faults: Bool = true, snapshotEvery: UInt64 = 50, membershipChanges: Bool = true, trace: Bool = false,
        flaw: Flaw? = nil
    ) {
        self.seed = seed
        self.nodes = nodes
        self.duration = duration
        self.settle = settle
        self.clients = clients
        self.faults = faults
        self.snapshotEvery = snapshotEvery
        self.membershipChanges = membershipChanges
        self.trace = trace
        self.flaw = flaw
    }
}

/// What a run found. `violations` is empty when every check held.
public struct SimulationReport: Sendable {
    public var seed: UInt64
    public var nodes: Int
    public var violations: [String] = []
    /// Client operations that completed, and writes whose outcome the client never learned.
    public var completedOperations = 0
    public var indeterminateWrites = 0
    public var elections = 0
    public var crashes = 0
    public var snapshotsSent = 0
    /// Writes a follower forwarded to the leader that completed, and forwards sent again.
    public var forwardedWrites = 0
    public var forwardsResent = 0
    /// Messages a member dropped as no member's (``RaftDisregarded``): answers from a member it
    /// no longer counts, late.
    public var messagesDisregarded = 0
    public var membershipChanges = 0
    /// Faults injected: symmetric partitions, one-way cuts, pauses, leadership transfers asked for.
    public var partitions = 0
    public var oneWayCuts = 0
    public var pauses = 0
    public var transfers = 0
    /// Disks slowed down for a while, and power cuts (every member down at once).
    public var slowDisks = 0
    public var powerCuts = 0
    /// Messages dropped by a cut, lost at random, and delivered twice.
    public var messagesBlocked = 0
    public var messagesLost = 0
    public var messagesDuplicated = 0
    public var committedIndex: UInt64 = 0
    public var events = 0

    public var passed: Bool { violations.isEmpty }

    public var summary: String {
        "seed \(seed) (\(nodes) nodes): \(passed ? "ok" : "FAILED"), \(completedOperations) operations, "
            + "\(indeterminateWrites) indeterminate, \(elections) elections, \(crashes) crashes, "
            + "\(snapshotsSent) snapshots sent, \(forwardedWrites) forwarded writes (\(forwardsResent) resent), \(messagesDisregarded) messages disregarded, \(membershipChanges) membership changes, "
            + "\(partitions) partitions, \(oneWayCuts) one-way cuts, \(pauses) pauses, \(transfers) transfers, "
            + "\(slowDisks) slow disks, \(powerCuts) power cuts, "
            + "\(messagesBlocked) messages cut off, \(messagesLost) lost, \(messagesDuplicated) duplicated, "
            + "commit \(committedIndex), \(events) events"
    }
}
