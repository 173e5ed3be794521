import Logging
import NIOCore
import Store

extension RaftTransport {
    /// Who this member is, for its hellos, and the id of the region it belongs to (nil while it
    /// knows none).
    struct Identity: Sendable {
        var group: String
        var member: String
        var regionID: UInt64?
        /// This member's replication address, as its membership gives it.
        var address: String
    }

    /// Says `member` of `group`, of the region `regionID`, first on every connection opened from
    /// now on, and refuses connections whose hello names another region; with `regionID` nil,
    /// says and checks nothing. When a member learns its id, it says it on the connections it has
    /// open too (a hello may come at any point of a connection); a connection it took with
    /// another region's hello while it knew none is refused at its next frame.
    public func identify(as member: String, group: String, regionID: UInt64?, address: String = "") {
        let previous = identity.withLock { identity in
            defer { identity = Identity(group: group, member: member, regionID: regionID, address: address) }
            return identity?.regionID
        }
        guard let regionID, previous != regionID else { return }
        let open = peers.withLock { peers in
            peers.values.compactMap { state in state.channel.map { ($0, state.member) } }
        }
        for (channel, recipient) in open where channel.isActive {
            guard let hello = hello(to: recipient) else { break }
            channel.writeAndFlush(channel.allocator.buffer(bytes: hello.encoded()), promise: nil)
        }
    }

    /// The id of the region this member belongs to, as last identified; nil while unknown.
    public var regionID: UInt64? { identity.withLock { $0?.regionID } }

    /// The hello that opens a connection to `member`; nil while this member's region is unknown.
    func hello(to member: String?) -> RaftFrame? {
        guard let identity = identity.withLock({ $0 }), let regionID = identity.regionID else { return nil }
        return RaftFrame(
            group: identity.group,
            hello: ConnectionHello(
                from: identity.member, to: member ?? "", regionID: regionID, address: identity.address))
    }

    /// A peer that connected in said which region it belongs to. Returns the hello to answer with
    /// when that is another region (the connection is then closed, and logged); nil when the
    /// connection is taken (the same region, or this member knows none yet).
    func greeted(by hello: ConnectionHello, from peer: SocketAddress?) -> ConnectionHello? {
        guard let own = identity.withLock({ $0 }), let ownID = own.regionID, ownID != hello.regionID else {
            return nil
        }
        connectionsRejected.increment()
        // Where it says it listens, for `dwcp cluster add-member` of that address to refuse it.
        if !hello.address.isEmpty, hello.address.utf8.count <= 300 {
            noteOtherRegion(at: hello.address, hello.regionID)
        }
        if let held = otherRegionsLogged.withLock({ $0.admit() }) {
            let peer = peer.map { "\($0)" } ?? "a peer"
            logger.warning(
                "closing the replication connection from \(peer)\(LogThrottle.more(held)): it comes from \(hello.from) of another region (region id \(RegionIdentified.described(hello.regionID)), this one's \(RegionIdentified.described(ownID))). A member of another region whose --peer list or membership points here? Its frames are not taken"
            )
        }
        return ConnectionHello(from: own.member, to: hello.from, regionID: ownID)
    }

    /// The peer at `key` answered this member's hello as a member of another region, and closes
    /// the connection: it is dialled again only after ``otherRegionBackoff``, and logged.
    func refused(at key: PeerKey, by hello: ConnectionHello) {
        guard let ownID = regionID, hello.regionID != ownID else { return }
        noteOtherRegion(at: key.address, hello.regionID)
        peers.withLock { peers in
            guard var state = peers[key] else { return }
            state.retryAt = .now + Self.otherRegionBackoff
            peers[key] = state
        }
        guard let held = refusalsByOtherRegionsLogged.withLock({ $0.admit() }) else { return }
        logger.warning(
            "the peer at \(key.address) is \(hello.from) of another region (region id \(RegionIdentified.described(hello.regionID)), this one's \(RegionIdentified.described(ownID))) and refuses this member's connections\(LogThrottle.more(held)): check the address in this member's --peer list and the membership (dwcp cluster status)"
        )
    }

    /// Notes that the peer at `address` is of the region `regionID`. At most ``maxOtherRegions``
    /// addresses are kept (an inbound hello names its own, so they come off the network): past
    /// them, those older than 30 s go, then the oldest.
    private func noteOtherRegion(at address: String, _ regionID: UInt64) {
        otherRegions.withLock { known in
            if known[address] == nil, known.count >= Self.maxOtherRegions {
                let now = ContinuousClock.now
                known = known.filter { $0.value.at.duration(to: now) < Self.otherRegionMemory }
                if known.count >= Self.maxOtherRegions, let oldest = known.min(by: { $0.value.at < $1.value.at }) {
                    known[oldest.key] = nil
                }
            }
            known[address] = (regionID, .now)
        }
    }

    static let maxOtherRegions = 64
    /// How long what a peer said of its region is kept.
    static let otherRegionMemory = Duration.seconds(30)

    /// The region id the peer at `address` answered with, as a member of another region, in the
    /// last 30 s (it is asked again every ``otherRegionBackoff`` while anything is sent to it);
    /// nil when it has not.
    public func otherRegion(at address: String) -> UInt64? {
        otherRegions.withLock { refusals in
            guard let refusal = refusals[address] else { return nil }
            guard refusal.at.duration(to: .now) < Self.otherRegionMemory else {
                refusals[address] = nil
                return nil
            }
            return refusal.regionID
        }
    }

    /// A connection that opened without a hello, while this member knows its region's id, sent a
    /// frame that leads or campaigns: dropped, and logged at most once per 10 s.
    func droppedUnvouched(from peer: SocketAddress?, _ frame: RaftFrame) {
        guard let held = unvouchedLogged.withLock({ $0.admit() }) else { return }
        let peer = peer.map { "\($0)" } ?? "a peer"
        let kind = frame.message.map { $0.body.name } ?? "snapshot chunk"
        logger.notice(
            "dropping a \(kind) from \(frame.sender) at \(peer)\(LogThrottle.more(held)): its connection names no region id (a member that has not applied the region's id yet, one of another region still starting, or a dwcp before hellos), and only a member that names this region's may lead or campaign here"
        )
    }
}
