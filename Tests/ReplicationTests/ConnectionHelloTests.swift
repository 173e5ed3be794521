import Logging
import NIOPosix
import Synchronization
import Testing

@testable import Replication

/// A connection's hello over real loopback sockets: a member of the same region is heard, one of
/// another region is refused and told which region it reached, one that knows no region yet
/// learns it from the first hello.
@Suite struct ConnectionHelloTests {
    static let frame = RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 3, body: .timeoutNow))

    /// Starts `b` listening and `a` dialling it with the region ids given; sends `a`'s frames
    /// for `seconds` and returns what `b` received and learned, and `a`'s back-off.
    func exchange(
        a: UInt64?, b: UInt64?, seconds: Double = 0.6
    ) async throws -> (received: [RaftFrame], learned: [ConnectionHello], backedOff: Bool, bRegionID: UInt64?) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var logger = Logger(label: "hello-test")
        logger.logLevel = .critical
        let receiver = RaftTransport(eventLoopGroup: group, logger: logger)
        let sender = RaftTransport(eventLoopGroup: group, logger: logger)
        receiver.identify(as: "b", group: "region", regionID: b)
        sender.identify(as: "a", group: "region", regionID: a)
        let received = Mutex<[RaftFrame]>([])
        let learned = Mutex<[ConnectionHello]>([])
        let port = try await receiver.listen(
            host: "127.0.0.1", port: 0, learned: { hello in learned.withLock { $0.append(hello) } }
        ) { frame in received.withLock { $0.append(frame) } }
        let address = "127.0.0.1:\(port)"
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end {
            sender.send(Self.frame, to: address)
            try await Task.sleep(for: .milliseconds(20))
        }
        let retryAt = sender.peers.withLock { $0[RaftTransport.PeerKey(address: address, lane: .raft)]?.retryAt }
        let backedOff = retryAt.map { $0 > .now + .seconds(2) } ?? false
        let result = (received.withLock { $0 }, learned.withLock { $0 }, backedOff, receiver.regionID)
        await sender.close()
        await receiver.close()
        try await group.shutdownGracefully()
        return result
    }

    @Test("a member of the same region is heard; its hello is the transport's, never the receiver's")
    func sameRegionIsHeard() async throws {
        let result = try await exchange(a: 42, b: 42)
        #expect(!result.received.isEmpty)
        #expect(result.received.allSatisfy { $0 == Self.frame }, "\(result.received)")
        #expect(result.learned.isEmpty && !result.backedOff)
    }

    @Test("a member of another region is refused: none of its frames is taken, and it waits before dialling again")
    func otherRegionIsRefused() async throws {
        let result = try await exchange(a: 42, b: 43)
        #expect(result.received.isEmpty, "\(result.received.count) frames taken")
        #expect(result.backedOff, "the dialler was not told, or did not back off")
        #expect(result.bRegionID == 43)
    }

    @Test("a member that knows no region id takes the first hello's, and then refuses another")
    func unknownRegionIsLearned() async throws {
        let result = try await exchange(a: 42, b: nil)
        #expect(!result.received.isEmpty)
        #expect(result.learned == [ConnectionHello(from: "a", to: "b", regionID: 42)])
        #expect(result.bRegionID == 42)
    }

    @Test("a member that says no region (one that has not learned it, or a dwcp before hellos) is heard")
    func silentDiallerIsHeard() async throws {
        let result = try await exchange(a: nil, b: 42)
        #expect(!result.received.isEmpty)
        #expect(result.learned.isEmpty && !result.backedOff)
    }

    @Test("the region id is the first membership's: the same bytes give the same id, others another")
    func regionIDOfTheFirstMembership() {
        let eu = RaftMembership(voters: ["n1": "10.0.0.1:7101", "n2": "10.0.0.2:7101", "n3": "10.0.0.3:7101"])
        let again = RaftMembership(voters: ["n3": "10.0.0.3:7101", "n1": "10.0.0.1:7101", "n2": "10.0.0.2:7101"])
        let staging = RaftMembership(voters: ["n1": "10.1.0.1:7101", "n2": "10.0.0.2:7101", "n3": "10.1.0.3:7101"])
        let id = ConnectionHello.regionID(ofFirstMembership: eu.encoded())
        #expect(id == ConnectionHello.regionID(ofFirstMembership: again.encoded()))
        #expect(id != ConnectionHello.regionID(ofFirstMembership: staging.encoded()))
        #expect(ConnectionHello.described(1) == "0000000000000001")
        #expect(ConnectionHello.described(id).count == 16)
    }
}
