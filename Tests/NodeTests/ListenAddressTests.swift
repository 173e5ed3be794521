import Logging
import TestSupport
import Testing

@testable import Node

@Suite struct ListenAddressTests {
    @Test("a member whose --listen port is not the one its membership gives says so as it starts (a mistyped --listen)")
    func listenPortOtherThanTheMembershipsIsReported() async throws {
        let dir = TemporaryDirectory()
        let said = RecordedLog()
        let members = ["n1": "127.0.0.1:7101", "n2": "127.0.0.1:7102", "n3": "127.0.0.1:7103"]
        func start(listenPort: Int) async throws {
            var configuration = NodeConfiguration(dataDirectory: dir.file("n1"), nodeID: "n1", region: "eu", apiPort: 0)
            configuration.replication = ReplicationConfiguration(
                listenHost: "127.0.0.1", listenPort: listenPort, peers: members)
            // The first node's lock is let go as it is released, but a process another test
            // spawns in that instant holds a copy of the descriptor until its exec closes it
            // (O_CLOEXEC): the likely cause of this test's one failure in a full run ("in use by
            // another dwcp", this process's pid). Asked again for a moment.
            let deadline = ContinuousClock.now + .seconds(5)
            while true {
                do {
                    _ = try Node(configuration: configuration, logger: said.logger)
                    return
                } catch let error as NodeError
                    where error.message.contains("in use by another dwcp") && ContinuousClock.now < deadline
                {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
        try await start(listenPort: 7101)
        #expect(!said.contains("listens on port"), "\(said.lines)")
        try await start(listenPort: 7109)
        #expect(said.contains("membership has n1 at 127.0.0.1:7101, but it listens on port 7109"), "\(said.lines)")
    }

    @Test("a node that joins under an id its --peer list gives another address says so as it starts")
    func joinerUnderAMembersID() throws {
        let dir = TemporaryDirectory()
        let members = ["n1": "127.0.0.1:7101", "n2": "127.0.0.1:7102", "n3": "127.0.0.1:7103"]
        func said(id: String, listenPort: Int) throws -> RecordedLog {
            let said = RecordedLog()
            var configuration = NodeConfiguration(
                dataDirectory: dir.file("\(id)-\(listenPort)"), nodeID: id, region: "eu", apiPort: 0)
            configuration.replication = ReplicationConfiguration(
                listenHost: "127.0.0.1", listenPort: listenPort, peers: members, join: true)
            _ = try Node(configuration: configuration, logger: said.logger)
            return said
        }
        // n2's id taken again by a fourth node: it used to wait for ever without a word.
        let taken = try said(id: "n2", listenPort: 7104)
        #expect(
            taken.contains(
                "--peer gives n2, this node's id, the address 127.0.0.1:7102, but it listens on 127.0.0.1:7104"),
            "\(taken.lines)")
        // A new id, or n2 at its own address (its directory emptied), says nothing of the kind.
        #expect(!(try said(id: "n4", listenPort: 7104)).contains("this node's id"))
        #expect(!(try said(id: "n2", listenPort: 7102)).contains("this node's id"))
        // The same port on another host (a fourth machine) is told too.
        #expect(RaftConsensus.differentAddresses("10.0.0.2", "10.0.0.4"))
        #expect(!RaftConsensus.differentAddresses("10.0.0.2", "0.0.0.0"))
        #expect(!RaftConsensus.differentAddresses("localhost", "127.0.0.1"))
        #expect(!RaftConsensus.differentAddresses("::1", "0:0::1"))
    }
}
