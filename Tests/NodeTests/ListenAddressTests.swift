import Logging
import TestSupport
import Testing

@testable import Node

@Suite struct ListenAddressTests {
    @Test("a member whose --listen port is not the one its membership gives says so as it starts (a mistyped --listen)")
    func listenPortOtherThanTheMembershipsIsReported() throws {
        let dir = TemporaryDirectory()
        let said = RecordedLog()
        let members = ["n1": "127.0.0.1:7101", "n2": "127.0.0.1:7102", "n3": "127.0.0.1:7103"]
        func start(listenPort: Int) throws {
            var configuration = NodeConfiguration(dataDirectory: dir.file("n1"), nodeID: "n1", region: "eu", apiPort: 0)
            configuration.replication = ReplicationConfiguration(
                listenHost: "127.0.0.1", listenPort: listenPort, peers: members)
            _ = try Node(configuration: configuration, logger: said.logger)
        }
        try start(listenPort: 7101)
        #expect(!said.contains("listens on port"), "\(said.lines)")
        try start(listenPort: 7109)
        #expect(said.contains("membership has n1 at 127.0.0.1:7101, but it listens on port 7109"), "\(said.lines)")
    }
}
