import Foundation
import Logging
import Store
import TestSupport
import Testing

@testable import Node

/// Runs a node in this process for the duration of `body`, then cancels it.
func withRunningNode<T: Sendable>(
    _ directory: TemporaryDirectory, region: String = "eu", register: HostRegistration? = nil,
    hostAgent: HostAgentConfiguration? = nil, snapshotEvery: UInt64 = 10_000,
    historyRetention: Duration? = NodeConfiguration.defaultHistoryRetention,
    consensus: (@Sendable (LogStore) -> any Consensus)? = nil, configure: (inout NodeConfiguration) -> Void = { _ in },
    logger given: Logger? = nil, _ body: @Sendable (Node) async throws -> T
) async throws -> T {
    var logger = given ?? Logger(label: "test")
    if given == nil { logger.logLevel = .warning }
    var configuration = NodeConfiguration(
        dataDirectory: directory.path, nodeID: "n1", region: region, apiPort: 0, registerHost: register,
        placementWait: .seconds(5), hostAgent: hostAgent)
    configuration.snapshotEvery = snapshotEvery
    configuration.historyRetention = historyRetention
    configure(&configuration)
    let node = try Node(configuration: configuration, logger: logger, consensus: consensus)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await node.run()
            return nil
        }
        defer { group.cancelAll() }
        return try await body(node)
    }
}

/// Runs a three-member region (n1, n2, n3 on loopback) in this process for the duration of
/// `body`, once all three agree on a leader (with `regions`, a node's region other than "eu": once
/// the members in "eu" agree on one of them); `body` gets the nodes and their replication
/// addresses. No HTTP APIs run. Elections time out after `electionTicks` of 10 ms (1 s unless
/// told: the product's 300 ms calls spurious elections when a full run loads two cores, and a
/// test that saved the leader would find it moved).
func withThreeMembers(
    _ directory: TemporaryDirectory, regions: [String: String] = [:], applyDelays: [String: Duration] = [:],
    loggers: [String: Logger] = [:], electionTicks: Int? = 100,
    _ body: @Sendable ([Node], [String: String]) async throws -> Void
) async throws {
    let ids = ["n1", "n2", "n3"]
    let ports = try ids.map { _ in try closedPort() }
    let peers = Dictionary(uniqueKeysWithValues: zip(ids, ports.map { "127.0.0.1:\($0)" }))
    let nodes = try zip(ids, ports).map { id, port in
        try regionMember(
            id, in: directory, region: regions[id] ?? "eu", port: port, peers: peers, applyDelay: applyDelays[id],
            electionTicks: electionTicks, logger: loggers[id])
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for node in nodes { group.addTask { try await node.run() } }
        defer { group.cancelAll() }
        let agreeing = nodes.filter { regions[$0.configuration.nodeID] == nil }
        // A full test run starts dozens of members at once on two cores: elections take long then.
        let agreed = try await waitUntil(timeout: .seconds(60)) {
            let leaders = Set(agreeing.map { $0.raft!.status.leader })
            return leaders.count == 1 && leaders.first!.map { regions[$0] == nil } == true
        }
        guard agreed else {
            // What each member thought, for a run that did not settle (seen under a full suite's load).
            let seen = nodes.map { node in
                let status = node.raft!.status
                return
                    "\(node.configuration.nodeID): \(status.role.rawValue) in term \(status.term), leader \(status.leader ?? "none"), last \(status.lastIndex), commit \(status.committed), region id \(node.raft!.transport.regionID.map(RegionIdentified.described) ?? "none")"
            }
            throw NodeError(.unavailable, "no leader all three agree on: " + seen.joined(separator: "; "))
        }
        try await body(nodes, peers)
    }
}

/// Runs a three-member region (``withThreeMembers(_:regions:applyDelays:loggers:electionTicks:_:)``)
/// and `id`, a node started with `--join` on a port of its own and not added; `body` gets the
/// region's leader, the joiner and the joiner's replication port.
func withThreeMembersAndAJoiner(
    _ directory: TemporaryDirectory, joiner id: String,
    _ body: @Sendable (_ leader: Node, _ joiner: Node, _ port: Int) async throws -> Void
) async throws {
    try await withThreeMembers(directory) { nodes, peers in
        let leader = try leader(of: nodes)
        let port = try closedPort()
        let joiner = try regionMember(id, in: directory, port: port, peers: peers, join: true)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await joiner.run() }
            defer { group.cancelAll() }
            _ = try await joiner.raft!.listening.wait(until: 1)
            try await body(leader, joiner, port)
        }
    }
}

/// The member that leads `nodes`, as the first of them names it (``withThreeMembers(_:regions:applyDelays:_:)``
/// starts its body once they agree).
func leader(of nodes: [Node]) throws -> Node {
    let id = try #require(nodes[0].raft!.status.leader)
    return try #require(nodes.first { $0.configuration.nodeID == id })
}

/// A member of `region` listening on `port` of loopback, in `directory`'s directory `name` (its id
/// by default), not started; with `join`, one that is to be added to a running region. No HTTP API.
func regionMember(
    _ id: String, in directory: TemporaryDirectory, name: String? = nil, region: String = "eu", port: Int,
    peers: [String: String], join: Bool = false, applyDelay: Duration? = nil, electionTicks: Int? = nil,
    snapshotEvery: UInt64? = nil, logger given: Logger? = nil
) throws -> Node {
    var logger = given ?? Logger(label: "test")
    if given == nil { logger.logLevel = .critical }
    var configuration = NodeConfiguration(
        dataDirectory: directory.file(name ?? id), nodeID: id, region: region, apiPort: 0)
    configuration.replication = ReplicationConfiguration(
        listenHost: "127.0.0.1", listenPort: port, peers: peers, join: join)
    if let applyDelay { configuration.replication?.followerApplyDelay = applyDelay }
    // A test starts its own periodic verify when it wants one: the default's first, 30 s after an
    // election, would make followers apply what they hold back, in the middle of other tests.
    configuration.replication?.verifyEvery = nil
    if let electionTicks { configuration.replication?.raft.electionTicks = electionTicks }
    if let snapshotEvery { configuration.snapshotEvery = snapshotEvery }
    return try Node(configuration: configuration, logger: logger)
}

/// Hands the leadership among `nodes` to `target`, asked again of whichever member leads (up to
/// five times) when a hand-off missed its window, as one can on a loaded machine; returns whether
/// `target` leads.
func handLeadership(to target: Node, among nodes: [Node]) async throws -> Bool {
    for _ in 0..<5 {
        if target.raft!.isLeader { return true }
        if let leader = nodes.first(where: { $0.raft!.isLeader }) {
            _ = try? await leader.raft!.moveLeadership(to: target.configuration.nodeID, timeout: .seconds(5))
        }
        if try await waitUntil(timeout: .seconds(5), { target.raft!.isLeader }) { return true }
    }
    return target.raft!.isLeader
}

/// `records` as log entries of term 1 from index `first` on (NodeTests' copy of
/// `ViewStoreTests.entries`, which lives in another test module).
func logEntries(_ records: [Record], from first: UInt64 = 1) -> [LogEntry] {
    records.enumerated().map { LogEntry(index: first + UInt64($0.offset), term: 1, payload: $0.element.encoded()) }
}

/// Rows of a query as JSON text, for compact assertions.
func rows(_ node: Node, _ sql: String) async throws -> String {
    let result = try await node.query.run(sql)
    return JSONValue.array(result.rows.map { .array($0) }).serialized()
}

/// The value of one sample in a `GET /metrics` answer (`name` with its labels, as written there,
/// like `dwcp_raft_proposals_retried_total{reason="refused"}`); nil when it is not there.
func metric(_ text: String, _ name: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
}

/// `open()` (which opens a node on a data directory a node used a moment ago), asked again for up
/// to 5 s while the directory is "in use by another dwcp": the first node's lock is let go as it
/// is released, but a process another test spawns in that instant holds a copy of the descriptor
/// until its exec closes it (O_CLOEXEC).
func openingAgain(_ open: () throws -> Node) async throws -> Node {
    let deadline = ContinuousClock.now + .seconds(5)
    while true {
        do {
            return try open()
        } catch let error as NodeError where error.message.contains("in use by another dwcp") {
            guard ContinuousClock.now < deadline else { throw error }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// The `NodeError` that refuses `open` (``openingAgain(_:)``); nil when it opens.
func refusal(opening open: () throws -> Node) async throws -> NodeError? {
    do {
        _ = try await openingAgain(open)
        return nil
    } catch let error as NodeError {
        return error
    }
}
