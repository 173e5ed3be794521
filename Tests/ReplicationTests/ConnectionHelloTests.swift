import Logging
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import Replication

/// A connection's hello over real loopback sockets: a member of the same region is heard, one of
/// another region is refused and told which region it reached, and a member that knows no id
/// yet checks nothing until it learns one, when its connections open again under the check.
@Suite struct ConnectionHelloTests {
    static let frame = RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 3, body: .timeoutNow))

    /// The frames a receiver took.
    final class Frames: Sendable {
        let list = Mutex<[RaftFrame]>([])
    }

    /// `a` dialling `b` on loopback, each with its region id.
    struct Pair {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver: RaftTransport
        let sender: RaftTransport
        let frames = Frames()
        var address = ""

        init(a: UInt64?, b: UInt64?) async throws {
            var logger = Logger(label: "hello-test")
            logger.logLevel = .critical
            receiver = RaftTransport(eventLoopGroup: group, logger: logger)
            sender = RaftTransport(eventLoopGroup: group, logger: logger)
            receiver.identify(as: "b", group: "region", regionID: b)
            sender.identify(as: "a", group: "region", regionID: a)
            let frames = frames
            let port = try await receiver.listen(host: "127.0.0.1", port: 0) { frame in
                frames.list.withLock { $0.append(frame) }
            }
            address = "127.0.0.1:\(port)"
        }

        /// Sends `a`'s frame every 20 ms for `seconds`; returns how many `b` took meanwhile.
        func send(for seconds: Double) async throws -> Int {
            let before = frames.list.withLock { $0.count }
            let end = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < end {
                sender.send(ConnectionHelloTests.frame, to: address)
                try await Task.sleep(for: .milliseconds(20))
            }
            return frames.list.withLock { $0.count } - before
        }

        /// Sends `a`'s frame every 20 ms until `b` takes one, for at most 20 s (a loaded machine
        /// may take seconds to connect); whether it took one.
        func sendUntilTaken() async throws -> Bool {
            let before = frames.list.withLock { $0.count }
            let end = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < end {
                sender.send(ConnectionHelloTests.frame, to: address)
                try await Task.sleep(for: .milliseconds(20))
                if frames.list.withLock({ $0.count }) > before { return true }
            }
            return false
        }

        /// Whether `a` dials `b` again no sooner than 4 s after `start` (a refusal after it puts
        /// the next dial 5 s after the refusal; a loaded machine may take seconds to send).
        func backedOff(since start: ContinuousClock.Instant) -> Bool {
            let retryAt = sender.peers.withLock {
                $0[RaftTransport.PeerKey(address: address, lane: .raft)]?.retryAt
            }
            return retryAt.map { $0 > start + .seconds(4) } ?? false
        }

        func close() async throws {
            await sender.close()
            await receiver.close()
            try await group.shutdownGracefully()
        }
    }

    @Test("a member of the same region is heard; its hello is the transport's, never the receiver's")
    func sameRegionIsHeard() async throws {
        let pair = try await Pair(a: 42, b: 42)
        let start = ContinuousClock.now
        #expect(try await pair.sendUntilTaken())
        #expect(pair.frames.list.withLock { $0.allSatisfy { $0 == Self.frame } })
        #expect(!pair.backedOff(since: start))
        try await pair.close()
    }

    @Test("a member of another region is refused: none of its frames is taken, and it waits before dialling again")
    func otherRegionIsRefused() async throws {
        let pair = try await Pair(a: 42, b: 43)
        let start = ContinuousClock.now
        let taken = try await pair.send(for: 0.5)
        #expect(taken == 0, "\(taken) frames taken")
        // (The refusal may reach a loaded dialler after the sends above.)
        #expect(
            try await eventually(.seconds(20)) { pair.backedOff(since: start) },
            "the dialler was not told, or did not back off")
        #expect(pair.sender.otherRegion(at: pair.address) == 43)
        try await pair.close()
    }

    @Test(
        "a member that knows no id takes any connection; once it learns one, a connection that said another is closed, and the next refused"
    )
    func learningAnIDClosesOtherRegionsConnections() async throws {
        let pair = try await Pair(a: 42, b: nil)
        #expect(try await pair.sendUntilTaken(), "a member without an id refused a connection")
        // b learns its region's id, which is not a's: the connection a opened is closed, and the
        // one a opens next is refused.
        pair.receiver.identify(as: "b", group: "region", regionID: 43)
        let start = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(100))
        let taken = try await pair.send(for: 0.5)
        #expect(taken == 0, "\(taken) frames taken after b learned another id")
        #expect(try await eventually(.seconds(20)) { pair.backedOff(since: start) })
        try await pair.close()
    }

    @Test(
        "a member that names no region (one that knows none yet, or a dwcp before hellos) is heard, but cannot lead or campaign here"
    )
    func silentDiallerCannotLead() async throws {
        let pair = try await Pair(a: nil, b: 42)
        let start = ContinuousClock.now
        // timeoutNow (a leader's hand-over): dropped.
        #expect(try await pair.send(for: 0.4) == 0)
        // A follower's answer: taken.
        let answer = RaftFrame(
            group: "region",
            message: RaftMessage(
                from: "a", to: "b", term: 3, body: .appendResponse(accepted: true, index: 7, hintIndex: 0, hintTerm: 0))
        )
        let end = ContinuousClock.now + .seconds(5)
        while !pair.frames.list.withLock({ $0.contains(answer) }), ContinuousClock.now < end {
            pair.sender.send(answer, to: pair.address)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(pair.frames.list.withLock { $0.contains(answer) })
        #expect(!pair.frames.list.withLock { $0.contains(Self.frame) })
        #expect(!pair.backedOff(since: start))
        try await pair.close()
    }

    @Test(
        "a member that learns its id says it on the connections it has open: what it sends there is taken again, with no connection closed"
    )
    func learningAnIDVouchesForOpenConnections() async throws {
        let pair = try await Pair(a: nil, b: 42)
        #expect(try await pair.send(for: 0.4) == 0, "a hand-over taken from a connection without a hello")
        let before = pair.sender.peers.withLock {
            $0[RaftTransport.PeerKey(address: pair.address, lane: .raft)]?.channel.map(ObjectIdentifier.init)
        }
        pair.sender.identify(as: "a", group: "region", regionID: 42)
        #expect(try await pair.sendUntilTaken(), "the hello on the open connection was not taken")
        let after = pair.sender.peers.withLock {
            $0[RaftTransport.PeerKey(address: pair.address, lane: .raft)]?.channel.map(ObjectIdentifier.init)
        }
        #expect(before != nil && before == after, "the connection was opened again")
        try await pair.close()
    }

    @Test("what only a leader or candidate sends is told apart from what anyone may")
    func leadsOrCampaigns() {
        func frame(_ body: RaftMessage.Body) -> RaftFrame {
            RaftFrame(group: "region", message: RaftMessage(from: "a", to: "b", term: 1, body: body))
        }
        let leading: [RaftMessage.Body] = [
            .preVote(lastIndex: 1, lastTerm: 1), .vote(lastIndex: 1, lastTerm: 1, transfer: false),
            .append(prevIndex: 0, prevTerm: 0, entries: [], commit: 0), .heartbeat(commit: 0, readContext: 0),
            .snapshot(RaftSnapshotMeta(index: 1, term: 1, membership: RaftMembership())), .timeoutNow,
        ]
        let following: [RaftMessage.Body] = [
            .preVoteResponse(granted: true), .voteResponse(granted: true),
            .appendResponse(accepted: true, index: 1, hintIndex: 0, hintTerm: 0), .heartbeatResponse(readContext: 0),
            .readIndex(context: 1), .readIndexResponse(context: 1, index: 1), .propose(id: 1, payloads: []),
            .proposeResponse(id: 1, index: 1), .proposeRefused(id: 1),
        ]
        #expect(leading.allSatisfy { frame($0).leadsOrCampaigns })
        #expect(!following.contains { frame($0).leadsOrCampaigns })
        let chunk = SnapshotChunk(
            from: "a", to: "b", index: 1, term: 1, offset: 0, totalBytes: 0, checksum: 0, data: [])
        #expect(RaftFrame(group: "region", chunk: chunk).leadsOrCampaigns)
        let hello = ConnectionHello(from: "a", to: "b", regionID: 1)
        #expect(!RaftFrame(group: "region", hello: hello).leadsOrCampaigns)
    }
}
