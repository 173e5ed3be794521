import Logging
import NIOCore

extension RaftTransport {
    /// Who this member is, for its hellos, and the id of the region it belongs to (nil until it
    /// learns it: a member that joins, or one whose log lost its first entry before ids were kept).
    struct Identity: Sendable {
        var group: String
        var member: String
        var regionID: UInt64?
    }

    /// Says `member` of `group`, of the region `regionID`, first on every connection opened from
    /// now on, and refuses connections whose hello names another region. With `regionID` nil
    /// nothing is said, and the first hello received sets it (``listen(host:port:connected:learned:receive:)``).
    public func identify(as member: String, group: String, regionID: UInt64?) {
        identity.withLock { $0 = Identity(group: group, member: member, regionID: regionID) }
    }

    /// The id of the region this member belongs to, as said or learned; nil while unknown.
    public var regionID: UInt64? { identity.withLock { $0?.regionID } }

    /// The hello that opens a connection to `member`; nil while this member's region is unknown.
    func hello(to member: String?) -> RaftFrame? {
        guard let identity = identity.withLock({ $0 }), let regionID = identity.regionID else { return nil }
        return RaftFrame(
            group: identity.group, hello: ConnectionHello(from: identity.member, to: member ?? "", regionID: regionID))
    }

    /// A peer that connected in said which region it belongs to. Returns the hello to answer with
    /// when that is another region (the connection is then closed, and logged); nil when the
    /// connection is taken. A member that does not know its region's id yet takes the first.
    func greeted(
        by hello: ConnectionHello, from peer: SocketAddress?, learned: (@Sendable (ConnectionHello) -> Void)?
    ) -> ConnectionHello? {
        enum Verdict {
            case taken, learned
            case refused(Identity, UInt64)
        }
        let verdict = identity.withLock { identity -> Verdict in
            guard let own = identity else { return .taken }
            guard let ownID = own.regionID else {
                identity?.regionID = hello.regionID
                return .learned
            }
            return ownID == hello.regionID ? .taken : .refused(own, ownID)
        }
        switch verdict {
        case .taken:
            return nil
        case .learned:
            learned?(hello)
            return nil
        case .refused(let own, let ownID):
            connectionsRejected.increment()
            if let held = otherRegionsLogged.withLock({ $0.admit() }) {
                let peer = peer.map { "\($0)" } ?? "a peer"
                logger.warning(
                    "closing the replication connection from \(peer)\(LogThrottle.more(held)): it comes from \(hello.from) of another region (region id \(ConnectionHello.described(hello.regionID)), this one's \(ConnectionHello.described(ownID)): the regions began from different memberships). A member of another region whose --peer list or membership points here? Its frames are not taken"
                )
            }
            return ConnectionHello(from: own.member, to: hello.from, regionID: ownID)
        }
    }

    /// The peer at `key` answered this member's hello as a member of another region, and closes
    /// the connection: it is dialled again only after ``otherRegionBackoff``, and logged.
    func refused(at key: PeerKey, by hello: ConnectionHello) {
        guard let ownID = regionID, hello.regionID != ownID else { return }
        peers.withLock { peers in
            guard var state = peers[key] else { return }
            state.retryAt = .now + Self.otherRegionBackoff
            peers[key] = state
        }
        guard let held = refusalsByOtherRegionsLogged.withLock({ $0.admit() }) else { return }
        logger.warning(
            "the peer at \(key.address) is \(hello.from) of another region (region id \(ConnectionHello.described(hello.regionID)), this one's \(ConnectionHello.described(ownID)): the regions began from different memberships) and refuses this member's connections\(LogThrottle.more(held)): check the address in this member's --peer list and the membership (dwcp cluster status)"
        )
    }
}
