import Logging
import MetricsTestKit
import NIOCore
import NIOPosix
import Store
import Synchronization
import TestSupport
import Testing

@testable import Replication

/// Mutual TLS on the replication port, over real loopback sockets: members of one authority talk;
/// a peer of another authority, one without TLS, one whose certificate names another address, and
/// one that never starts its handshake get no frame in, nor does a frame under another member's
/// name than its certificate's. Certificates come from
/// `scripts/peer-certs.sh`, the script the README gives operators.
@Suite struct PeerTLSTests {
    /// Two authorities' certificates in one temporary directory: `region/` (members a, b and
    /// `elsewhere`, whose certificate names a DNS name instead of 127.0.0.1) and `other/` (members x
    /// and a).
    final class Certificates: Sendable {
        let directory = TemporaryDirectory("dwcp-peer-tls")

        init() async throws {
            try await makePeerCertificates(
                in: directory.file("region"), ["a": "127.0.0.1", "b": "127.0.0.1", "elsewhere": "elsewhere.example"])
            try await makePeerCertificates(in: directory.file("other"), ["x": "127.0.0.1", "a": "127.0.0.1"])
        }

        func tls(_ member: String, authority: String = "region", trusting: String? = nil) throws -> PeerTLS {
            try PeerTLS(
                certificateFile: directory.file("\(authority)/\(member).pem"),
                privateKeyFile: directory.file("\(authority)/\(member).key"),
                trustedCAFile: directory.file("\(trusting ?? authority)/ca.pem"))
        }
    }

    /// A receiving transport that records the terms of the messages it is handed.
    struct Receiver {
        let transport: RaftTransport
        let port: Int
        let terms: ReceivedTerms
        let metrics: TestMetrics

        init(
            group: any EventLoopGroup, tls: PeerTLS?, handshakeDeadline: TimeAmount = .seconds(5),
            maxInboundConnections: Int = 64
        ) async throws {
            let metrics = TestMetrics()
            let terms = ReceivedTerms()
            transport = RaftTransport(
                eventLoopGroup: group, logger: Logger(label: "tls-test"), metrics: metrics,
                maxInboundConnections: maxInboundConnections, tls: tls, handshakeDeadline: handshakeDeadline)
            port = try await transport.listen(host: "127.0.0.1", port: 0) { frame in
                if let message = frame.message { terms.terms.withLock { $0.append(message.term) } }
            }
            self.terms = terms
            self.metrics = metrics
        }

        var address: String { "127.0.0.1:\(port)" }
        var handshakesFailed: Int64 {
            PeerTLSTests.handshakesFailed(metrics)
        }
    }

    static func frame(_ term: UInt64, to recipient: String = "b") -> RaftFrame {
        RaftFrame(group: "region", message: RaftMessage(from: "a", to: recipient, term: term, body: .timeoutNow))
    }

    /// A transport of `tls` that counts into `metrics`.
    static func sender(_ group: any EventLoopGroup, _ tls: PeerTLS, metrics: TestMetrics = TestMetrics())
        -> RaftTransport
    {
        RaftTransport(eventLoopGroup: group, logger: Logger(label: "tls-test"), metrics: metrics, tls: tls)
    }

    static func handshakesFailed(_ metrics: TestMetrics) -> Int64 {
        (try? metrics.expectCounter("dwcp_transport_tls_handshakes_failed_total").totalValue) ?? 0
    }

    /// Sends a frame of term 1 (for `recipient`) every 20 ms until one more lands or `timeout`
    /// passes; whether one landed.
    static func delivers(
        from sender: RaftTransport, to receiver: Receiver, recipient: String = "b", timeout: Duration = .seconds(10)
    ) async throws -> Bool {
        let before = receiver.terms.terms.withLock { $0.count }
        let deadline = ContinuousClock.now + timeout
        while receiver.terms.terms.withLock({ $0.count == before }), ContinuousClock.now < deadline {
            sender.send(frame(1, to: recipient), to: receiver.address)
            try await Task.sleep(for: .milliseconds(20))
        }
        return receiver.terms.terms.withLock { $0.count > before }
    }

    @Test("a node's own certificate outside its validity dates is refused, naming the dates (peers would refuse it)")
    func ownCertificateOutsideItsDates() async throws {
        let certificates = try await Certificates()
        let file = certificates.directory.file("region/a.pem")
        let certificate = try PEMFile.certificates(file, what: "member certificate")[0]
        try PEMFile.requireValid(certificate, file: file, what: "member certificate")
        let expired = #expect(throws: ReplicationError.self) {
            try PEMFile.requireValid(
                certificate, file: file, what: "member certificate", now: certificate.notValidAfter + 1)
        }
        #expect(expired?.message.contains("expired at") == true, "\(String(describing: expired))")
        let early = #expect(throws: ReplicationError.self) {
            try PEMFile.requireValid(
                certificate, file: file, what: "member certificate", now: certificate.notValidBefore - 1)
        }
        #expect(early?.message.contains("is not valid before") == true, "\(String(describing: early))")
        #expect(PEMFile.utc(0) == "1970-01-01 00:00:00 UTC")
    }

    @Test("two members of one authority exchange frames over mutual TLS, in order")
    func membersOfOneAuthorityTalk() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try await Receiver(group: group, tls: try certificates.tls("b"))
        let sender = Self.sender(group, try certificates.tls("a"))
        #expect(try await Self.delivers(from: sender, to: receiver), "no frame arrived over TLS")
        receiver.terms.terms.withLock { $0.removeAll() }
        for term in UInt64(2)...101 { sender.send(Self.frame(term), to: receiver.address) }
        // (More frames of term 1 may arrive from the first connection's queue.)
        #expect(
            try await eventually(.seconds(10)) { receiver.terms.terms.withLock { $0.filter { $0 != 1 }.count } >= 100 })
        #expect(receiver.terms.terms.withLock { $0.filter { $0 != 1 } } == Array(2...101))
        #expect(receiver.handshakesFailed == 0)
        await sender.close()
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test(
        "a peer of another authority gets no frame in, whichever side refuses: its certificate (the receiver) or the receiver's (the peer)"
    )
    func anotherAuthorityIsRefused() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try await Receiver(group: group, tls: try certificates.tls("b"))
        // Its own authority's certificate, trusting the region's: the receiver refuses it. The
        // impostor's handshake ends before the receiver has checked its certificate (TLS 1.3);
        // it learns of the refusal from the alert, and counts it.
        let impostorMetrics = TestMetrics()
        let impostor = Self.sender(
            group, try certificates.tls("x", authority: "other", trusting: "region"), metrics: impostorMetrics)
        #expect(!(try await Self.delivers(from: impostor, to: receiver, timeout: .seconds(1.5))))
        #expect(try await eventually(.seconds(10)) { receiver.handshakesFailed >= 1 })
        #expect(try await eventually(.seconds(10)) { Self.handshakesFailed(impostorMetrics) >= 1 })
        await impostor.close()
        // Wholly of the other authority: it refuses the receiver's certificate.
        let strangerMetrics = TestMetrics()
        let stranger = Self.sender(group, try certificates.tls("x", authority: "other"), metrics: strangerMetrics)
        let before = receiver.handshakesFailed
        #expect(!(try await Self.delivers(from: stranger, to: receiver, timeout: .seconds(1.5))))
        #expect(try await eventually(.seconds(10)) { receiver.handshakesFailed > before })
        #expect(try await eventually(.seconds(10)) { Self.handshakesFailed(strangerMetrics) >= 1 })
        // A member of the authority still gets in after all that.
        let member = Self.sender(group, try certificates.tls("a"))
        #expect(try await Self.delivers(from: member, to: receiver))
        for transport in [stranger, member, receiver.transport] { await transport.close() }
        try await group.shutdownGracefully()
    }

    @Test(
        "a frame under another member's name than the connection's certificate speaks for closes the connection; the member's own frames go on"
    )
    func framesAreHeldToTheCertifiedMember() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try await Receiver(group: group, tls: try certificates.tls("b"))
        let sender = Self.sender(group, try certificates.tls("a"))
        #expect(try await Self.delivers(from: sender, to: receiver), "a's own frame did not arrive")
        // a's certificate, b's name (a vote, an append or an answer as if from b).
        let forged = RaftFrame(group: "region", message: RaftMessage(from: "b", to: "b", term: 99, body: .timeoutNow))
        sender.send(forged, to: receiver.address)
        #expect(
            try await eventually(.seconds(10)) {
                (try? receiver.metrics.expectCounter("dwcp_transport_connections_rejected_total").totalValue) == 1
            })
        #expect(!receiver.terms.terms.withLock { $0.contains(99) })
        // The connection was closed; a's next frame opens another, and arrives.
        #expect(try await Self.delivers(from: sender, to: receiver))
        #expect(!receiver.terms.terms.withLock { $0.contains(99) })
        await sender.close()
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test("a member refuses a peer whose certificate does not name the address it dialled")
    func aCertificateForAnotherAddressIsRefused() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Signed by the region's authority, but for elsewhere.example, not 127.0.0.1.
        let receiver = try await Receiver(group: group, tls: try certificates.tls("elsewhere"))
        let metrics = TestMetrics()
        let sender = Self.sender(group, try certificates.tls("a"), metrics: metrics)
        // (Addressed to the member the certificate speaks for: only the address is wrong.)
        #expect(
            !(try await Self.delivers(from: sender, to: receiver, recipient: "elsewhere", timeout: .seconds(1.5))))
        #expect(try await eventually(.seconds(10)) { Self.handshakesFailed(metrics) >= 1 })
        await sender.close()
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test("a member refuses a peer whose certificate speaks for another member than the one dialled")
    func aCertificateOfAnotherMemberIsRefused() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // b listens where the sender believes a is (two members on one host: the address is the
        // same for both, the certificate is not).
        let receiver = try await Receiver(group: group, tls: try certificates.tls("b"))
        let metrics = TestMetrics()
        let sender = Self.sender(group, try certificates.tls("a"), metrics: metrics)
        #expect(!(try await Self.delivers(from: sender, to: receiver, recipient: "a", timeout: .seconds(1.5))))
        #expect(try await eventually(.seconds(10)) { Self.handshakesFailed(metrics) >= 1 })
        // Whom the certificate there spoke for is kept (an addition at that address is refused
        // naming it), and forgotten with the address.
        let failure = sender.lastFailure(at: receiver.address, lane: .raft)
        #expect(
            failure?.certifiedAs == "b" && failure?.reason.contains("speaks for b") == true,
            "\(String(describing: failure))")
        sender.forget(receiver.address)
        #expect(sender.lastFailure(at: receiver.address, lane: .raft) == nil)
        await sender.close()
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test(
        "at most 16 accepted connections may be in their handshake at once: one more is closed as it opens, members' places stay free"
    )
    func connectionsInTheirHandshakeAreCapped() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // A deadline far off: the silent connections must stay in their handshake while the test
        // runs, however slowly (the default 5 s closed them on a loaded machine).
        let receiver = try await Receiver(
            group: group, tls: try certificates.tls("b"), handshakeDeadline: .seconds(300))
        var silent: [any Channel] = []
        for _ in 0..<RaftTransport.maxUnprovenConnections {
            silent.append(try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: receiver.port).get())
        }
        #expect(try await eventually(.seconds(10)) { receiver.transport.unproven.withLock { $0.count } == 16 })
        let oneMore = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: receiver.port).get()
        #expect(
            try await eventually(.seconds(10)) { !oneMore.isActive },
            "a 17th connection in its handshake stayed open")
        #expect(silent.allSatisfy { $0.isActive })
        #expect((try? receiver.metrics.expectCounter("dwcp_transport_connections_refused_total").totalValue) == 1)
        for channel in silent { try? await channel.close() }
        let member = Self.sender(group, try certificates.tls("a"))
        #expect(try await Self.delivers(from: member, to: receiver))
        #expect(try await eventually(.seconds(10)) { receiver.transport.unproven.withLock { $0.isEmpty } })
        await member.close()
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test(
        "a connection refused at the cap on open connections takes no place among those in their handshake: the places stay free for members"
    )
    func refusedConnectionsTakeNoHandshakePlace() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try await Receiver(
            group: group, tls: try certificates.tls("b"), handshakeDeadline: .seconds(300), maxInboundConnections: 1)
        let silent = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: receiver.port).get()
        #expect(try await eventually(.seconds(10)) { receiver.transport.unproven.withLock { $0.count } == 1 })
        // Refused as they open: one place of one is taken. Each took a handshake place for good
        // before, and after 16 every member's connection was refused as "still in their handshake".
        for _ in 0..<3 {
            let refused = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: receiver.port).get()
            #expect(try await eventually(.seconds(10)) { !refused.isActive }, "a connection past the cap stayed open")
        }
        #expect(receiver.transport.unproven.withLock { $0.count } == 1)
        try await silent.close()
        #expect(try await eventually(.seconds(10)) { receiver.transport.unproven.withLock { $0.isEmpty } })
        let member = Self.sender(group, try certificates.tls("a"))
        #expect(try await Self.delivers(from: member, to: receiver))
        await member.close()
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test(
        "a plain-TCP peer's frame reaches a plain receiver but not a TLS one, which closes the connection and counts it"
    )
    func plainTextIsRefused() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let plain = try await Receiver(group: group, tls: nil)
        let secured = try await Receiver(group: group, tls: try certificates.tls("b"))
        let bytes = Self.frame(7).encoded()
        for receiver in [plain, secured] {
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: receiver.port).get()
            try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
            if receiver.port == plain.port {
                // The control: the same bytes are a frame the plain transport takes.
                #expect(try await eventually(.seconds(10)) { plain.terms.terms.withLock { $0 == [7] } })
                try await channel.close()
            } else {
                #expect(
                    try await eventually(.seconds(10)) { !channel.isActive },
                    "the TLS receiver kept the connection open")
                #expect(secured.terms.terms.withLock { $0.isEmpty })
                #expect(try await eventually(.seconds(10)) { secured.handshakesFailed == 1 })
            }
        }
        await plain.transport.close()
        await secured.transport.close()
        try await group.shutdownGracefully()
    }

    @Test("a connection that never starts its handshake is closed at the deadline, freeing its place")
    func aSilentConnectionIsClosedAtTheDeadline() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try await Receiver(
            group: group, tls: try certificates.tls("b"), handshakeDeadline: .milliseconds(500))
        // The receiver's clock starts once it accepts, after this instant: it cannot close sooner.
        let opened = ContinuousClock.now
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: receiver.port).get()
        #expect(try await eventually(.seconds(10)) { !channel.isActive }, "still open past the deadline")
        #expect(opened.duration(to: .now) >= .milliseconds(500), "closed before the deadline")
        #expect(try await eventually(.seconds(10)) { receiver.handshakesFailed == 1 })
        #expect(try await eventually(.seconds(10)) { receiver.transport.accepted.withLock { $0.isEmpty } })
        await receiver.transport.close()
        try await group.shutdownGracefully()
    }

    @Test(
        "reloaded certificates apply to the connections opened after; a transport started without TLS takes none"
    )
    func reloadedCertificatesApplyToNewConnections() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let receiver = try await Receiver(group: group, tls: try certificates.tls("b"))
        let member = Self.sender(group, try certificates.tls("a"))
        #expect(try await Self.delivers(from: member, to: receiver))
        await member.close()
        // The receiver moves to the other authority (its certificate speaks for x now).
        try receiver.transport.reloadTLS(try certificates.tls("x", authority: "other"))
        let formerPeer = Self.sender(group, try certificates.tls("a"))
        #expect(!(try await Self.delivers(from: formerPeer, to: receiver, recipient: "x", timeout: .seconds(1.5))))
        let newPeerTLS = try certificates.tls("a", trusting: "other")
        // a's certificate is the region's, which x no longer trusts either: still refused.
        let stillRefused = Self.sender(group, newPeerTLS)
        #expect(!(try await Self.delivers(from: stillRefused, to: receiver, recipient: "x", timeout: .seconds(1.5))))
        // A member of the other authority gets in.
        let newPeer = Self.sender(group, try certificates.tls("a", authority: "other"))
        #expect(try await Self.delivers(from: newPeer, to: receiver, recipient: "x"))
        let plain = try await Receiver(group: group, tls: nil)
        #expect(throws: ReplicationError.self) { try plain.transport.reloadTLS(try certificates.tls("b")) }
        for transport in [formerPeer, stillRefused, newPeer, receiver.transport, plain.transport] {
            await transport.close()
        }
        try await group.shutdownGracefully()
    }

    @Test("files that cannot be used are refused at start, naming the file and why")
    func unusableFilesAreRefused() async throws {
        let certificates = try await Certificates()
        let region = certificates.directory.file("region")
        func refusal(_ certificate: String, _ key: String, _ authority: String) -> String? {
            do {
                _ = try PeerTLS(
                    certificateFile: "\(region)/\(certificate)", privateKeyFile: "\(region)/\(key)",
                    trustedCAFile: "\(region)/\(authority)")
                return nil
            } catch let error as ReplicationError {
                #expect(error.code == .invalidConfiguration)
                return error.message
            } catch {
                Issue.record("not a ReplicationError: \(error)")
                return "\(error)"
            }
        }
        #expect(refusal("a.pem", "a.key", "ca.pem") == nil)
        #expect(refusal("missing.pem", "a.key", "ca.pem")?.contains("missing.pem: No such file") == true)
        #expect(refusal("a.key", "a.key", "ca.pem")?.contains("a.key does not hold PEM certificates") == true)
        #expect(refusal("a.pem", "a.pem", "ca.pem")?.contains("a.pem holds no PEM private key") == true)
        #expect(refusal("a.pem", "b.key", "ca.pem")?.contains("is it the key of that certificate?") == true)
        #expect(refusal("a.pem", "a.key", "a.key")?.contains("trusted CA file") == true)
    }
}

/// Members started one with TLS and one without: each side's log says what is wrong.
extension PeerTLSTests {
    @Test("a TLS member and a plain one: the plain side says the peer speaks TLS, the TLS side that it was cut off")
    func tlsAgainstPlainIsTold() async throws {
        let certificates = try await Certificates()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let plainLog = RecordedLog()
        let plainMetrics = TestMetrics()
        let plain = RaftTransport(
            eventLoopGroup: group, logger: plainLog.logger, metrics: plainMetrics)
        let port = try await plain.listen(host: "127.0.0.1", port: 0) { _ in }
        let securedLog = RecordedLog()
        let secured = RaftTransport(
            eventLoopGroup: group, logger: securedLog.logger, metrics: TestMetrics(), tls: try certificates.tls("a"))
        let started = ContinuousClock.now
        secured.send(Self.frame(1), to: "127.0.0.1:\(port)")
        #expect(
            try await eventually(.seconds(10)) { plainLog.contains("it speaks TLS") },
            "the plain side logged: \(plainLog.lines)")
        #expect(
            try await eventually(.seconds(10)) { securedLog.contains("it runs without TLS") },
            "the TLS side logged: \(securedLog.lines)")
        // The TLS member dials again and again: every connection counts, one line per 10 s is logged.
        func rejected() -> Int64 {
            (try? plainMetrics.expectCounter("dwcp_transport_connections_rejected_total").totalValue) ?? 0
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while rejected() < 3, ContinuousClock.now < deadline {
            secured.send(Self.frame(1), to: "127.0.0.1:\(port)")  // (dropped while it backs off)
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(rejected() >= 3)
        // One line per 10 s: on a loaded machine the dialling above may itself outlast 10 s.
        let allowed = 1 + Int((ContinuousClock.now - started) / .seconds(10))
        let lines = plainLog.lines.count { $0.contains("it speaks TLS") }
        #expect(
            lines >= 1 && lines <= allowed && lines < rejected(),
            "\(lines) lines, \(allowed) allowed: \(plainLog.lines)")
        await secured.close()
        await plain.close()
        try await group.shutdownGracefully()
    }

    @Test("a frame's first bytes are never taken for TLS or HTTP; a ClientHello's and a request's are")
    func foreignProtocolsAreRecognised() throws {
        func start(_ frame: RaftFrame) -> [UInt8] { Array(frame.encoded().prefix(9)) }
        for term in [0, 1, 1 << 40] as [UInt64] {
            #expect(RaftFrameDecoder.foreignProtocol(start(Self.frame(term))) == nil)
        }
        // The frames that look most like a TLS record: a one-byte group name (its length byte,
        // 1, where a hello's type is) and a length whose low bytes are a handshake record's
        // header (0x16 0x03): 790 bytes, or 65,536 more, and so on.
        func appendFrame(payload: Int) -> RaftFrame {
            RaftFrame(
                group: "g",
                message: RaftMessage(
                    from: "a", to: "b", term: 3,
                    body: .append(
                        prevIndex: 0, prevTerm: 0,
                        entries: [LogEntry(index: 1, term: 3, payload: [UInt8](repeating: 7, count: payload))],
                        commit: 0)))
        }
        // A frame is at least its payload longer than the one with an empty payload; the search
        // for the smallest payload that makes it `length` starts a little below that bound (each
        // encoding is checksummed whole: a byte at a time from 0 took 10-20 s of a test thread).
        let overhead = appendFrame(payload: 0).encoded().count - 4
        for length in [790, 790 + 65_536, 790 + 2 * 65_536] {
            var payload = max(0, length - overhead - 32)
            try #require(appendFrame(payload: payload).encoded().count - 4 < length, "the search starts too high")
            var frame: RaftFrame
            repeat {
                frame = appendFrame(payload: payload)
                payload += 1
            } while frame.encoded().count - 4 < length
            let bytes = start(frame)
            #expect(bytes.prefix(2) == [0x16, 0x03] && bytes[5] == 1, "\(bytes)")
            #expect(RaftFrameDecoder.foreignProtocol(bytes) == nil, "a frame of \(length) bytes taken for TLS")
        }
        // A ClientHello of 512 bytes in a record of 516.
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x04, 0x01, 0x00, 0x02, 0x00]
        #expect(RaftFrameDecoder.foreignProtocol(hello)?.message.contains("speaks TLS") == true)
        #expect(
            RaftFrameDecoder.foreignProtocol(Array("GET /v1/status HTTP/1.1\r\n".utf8.prefix(9)))?.message.contains(
                "HTTP")
                == true)
    }
}
