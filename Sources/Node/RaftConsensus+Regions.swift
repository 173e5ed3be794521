import NIOPosix
import Replication
import Store

extension RaftConsensus {
    /// Tells the members and peers this member knows of (its `--peer`s too, before it has a
    /// membership) which region it was started in, each once per replication address.
    func tellRegion(toUntold members: [String: String]) {
        guard let region else { return }
        let untold = regions.withLock { Self.untold(members, besides: nodeID, told: &$0.toldTo) }
        for (id, address) in untold.sorted(by: { $0.key < $1.key }) { sendRegion(to: id, at: address, region) }
    }

    /// Tells every member its region and founding again, every ``regionRetellInterval``: a tell
    /// sent while a member did not listen yet is lost, and a member whose membership gives it no
    /// address for this one (started with itself alone in its --peer list) hears of it only so.
    /// Two small frames per member; on an event loop's own timer.
    func retellRegionsPeriodically() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        while true {
            try await loop.sleep(for: Self.regionRetellInterval)
            let members = Self.retold(
                addresses.withLock { $0 }, members: Set(state.withLock { $0.membership.all.keys }),
                peers: Set(configuration.peers.keys), besides: nodeID)
            for (id, address) in members { retellRegion(to: id, at: address) }
        }
    }

    /// Whom ``retellRegionsPeriodically()`` tells, of the `addresses` known, in id order: the
    /// `members` of now, or while the log holds no membership (a region's first start, a joiner
    /// not added yet) the `--peer` list; not `own`. Not a member removed since, whose address
    /// another member may have taken (members usually keep their first `--peer` list across
    /// restarts): that one would say, every few seconds for ever, that frames for the removed
    /// member reach it.
    static func retold(_ addresses: [String: String], members: Set<String>, peers: Set<String>, besides own: String)
        -> [(id: String, address: String)]
    {
        let told = members.isEmpty ? peers : members
        return addresses.filter { $0.key != own && told.contains($0.key) }
            .sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// How often ``retellRegionsPeriodically()`` tells the members again.
    static let regionRetellInterval = Duration.seconds(2)

    /// Tells `member` this member's region again (it connected in, or asked for a status).
    func retellRegion(to member: String, at address: String) {
        guard let region else { return }
        regions.withLock { $0.toldTo[member] = address }
        sendRegion(to: member, at: address, region)
    }

    private func sendRegion(to member: String, at address: String, _ region: String) {
        let said = MemberRegion(from: nodeID, to: member, region: region)
        transport.send(RaftFrame(group: group, memberRegion: said), to: address, lane: .status)
        // Sent unknown too (empty): what this member said before (its directory emptied since,
        // and started with --join) no longer stands. A joiner without a membership yet says the
        // address it listens on (unless that is a wildcard), which its members know it by.
        let listening =
            Validation.isWildcardHost(configuration.listenHost)
            ? "" : "\(configuration.listenHost):\(configuration.listenPort)"
        let own = addresses.withLock { $0[nodeID] } ?? listening
        let founded = MemberFounding(from: nodeID, to: member, founding: founding ?? "", address: own)
        transport.send(RaftFrame(group: group, memberFounding: founded), to: address, lane: .status)
    }

    /// A member said how its region was founded (``MemberFounding``).
    func receive(_ said: MemberFounding) {
        guard let founding, !said.address.isEmpty else { return }
        // A member only at the address this member has for it: a node of the same id elsewhere
        // (another region named alike) says nothing about this region's member. A sender this
        // member has no address for (no member of its membership: one started with a --peer list
        // without the others, itself alone) is kept too, among the few outsiders, so that its
        // leader's appends are not taken; and it is told this member's founding in turn (its own
        // membership gives it no address to tell it at).
        let known = addresses.withLock { $0[said.from] }
        guard known == nil || known == said.address else { return }
        guard !said.founding.isEmpty else {
            regions.withLock { $0.forgetFounding(of: said.from) }
            return
        }
        if known == nil, said.founding != founding { retellRegion(to: said.from, at: said.address) }
        if said.founding != founding { anyoneCutOff.store(true, ordering: .releasing) }
        let membership = state.withLock { $0.membership }
        let isVoter = membership.voters[said.from] != nil
        // Recorded, decided and noted under one look: a voter's telling in between would be missed.
        let verdict: (startedOtherwise: Bool, othersStartedOtherwise: Bool)? = regions.withLock { regions in
            let due = regions.record(founding: said.founding, from: said.from, own: founding)
            // (Only of a voter of this member's membership: one outside it, heard because it told
            // this member, may be the one whose list was right; and only a voter's line is logged
            // again once decided, since only a voter's can be.)
            let shared = isVoter && regions.shareFounding(membership, own: founding, id: nodeID)
            // A voter that shares this member's founding may be the one that decides which side
            // was started otherwise: what was logged undecided before is logged again, decided.
            if said.founding == founding, shared { regions.decideLoggedUndecided() }
            guard due else { return nil }
            let startedOtherwise = regions.majorityFoundedOtherwise(membership, own: founding, id: nodeID) != nil
            let othersStartedOtherwise = !startedOtherwise && shared
            if !startedOtherwise && !othersStartedOtherwise && isVoter { regions.noteLoggedUndecided(said.from) }
            return (startedOtherwise, othersStartedOtherwise)
        }
        guard let verdict else { return }
        let rejoin = { (id: String) in NodeError.rejoinRemedy(id) }
        let remedy =
            if verdict.startedOtherwise {
                "most of the region's voters were started otherwise than this member: \(rejoin(nodeID))"
            } else if verdict.othersStartedOtherwise {
                "most of the region's voters were started as this member was: \(rejoin(said.from))"
            } else {
                "compare the two --peer lists; the member whose list was wrong is the one to add again: \(rejoin("ID"))"
            }
        logger.error(
            "\(group): \(said.from) was started with other members in its --peer list than this member was (the first entries of their logs differ: founding \(said.founding) there, \(founding) here): its Raft messages are ignored here, as if it could not be reached, since Raft cannot tell their first entries apart; every first member of a region is started with the same --peer list. \(remedy)"
        )
    }

    /// Whether `member` said another region or founding than this member's: its Raft messages are
    /// ignored, as if it could not be reached. One look under the lock.
    func isCutOff(_ member: String) -> Bool {
        regions.withLock { said in
            (region.map { said.otherRegion(of: member, own: $0) != nil } ?? false)
                || (founding.map { said.otherFounding(of: member, own: $0) != nil } ?? false)
        }
    }

    /// The founding `member` said when it is not this member's; nil when it is, or unknown.
    public func otherFounding(of member: String) -> String? {
        guard let founding else { return nil }
        return regions.withLock { $0.otherFounding(of: member, own: founding) }
    }

    /// The founding most of the voters said when it is not this member's: this member is the one
    /// started with another `--peer` list, and they ignore it. Nil otherwise.
    func foundingOfTheOthers() -> String? {
        guard let founding else { return nil }
        let membership = state.withLock { $0.membership }
        return regions.withLock { $0.majorityFoundedOtherwise(membership, own: founding, id: nodeID) }
    }

    /// Another member (or a node about to be added) said which region it was started in.
    func receive(_ said: MemberRegion) {
        guard let region, !said.region.isEmpty else { return }
        if said.region != region { anyoneCutOff.store(true, ordering: .releasing) }
        guard regions.withLock({ $0.record(said.region, from: said.from, own: region) }) else { return }
        let remedy =
            regionOfTheOthers().map {
                "most of the region's voters say \($0): start this member again with --region \($0)"
            }
            ?? "start \(said.from) again with --region \(region)"
        logger.error(
            "\(group): \(said.from) was started with --region \(said.region), this member with --region \(region): its Raft messages are ignored here, as if it could not be reached; \(remedy) (a data directory records its region: one that is refused must be emptied first)"
        )
    }

    /// Forgets what members that left said of their regions (``MemberRegions/noteMembers(_:)``).
    func noteRegions(members: [String: String]) {
        regions.withLock { $0.noteMembers(Set(members.keys)) }
        tellRegion(toUntold: members)
    }

    /// The region `member` said it was started in, when that is not this member's; nil when it is,
    /// or when it has not said (a dwcp before regions were exchanged, or not heard from yet).
    public func otherRegion(of member: String) -> String? {
        guard let region else { return nil }
        return regions.withLock { $0.otherRegion(of: member, own: region) }
    }

    /// The region most of the voters said when it is not this member's: this member is the one
    /// started under the wrong name, and they ignore it. Nil otherwise. A member that knows no
    /// membership yet (one started with --join) counts the members of its --peer list instead.
    func regionOfTheOthers() -> String? {
        guard let region else { return nil }
        var membership = state.withLock { $0.membership }
        if membership.voters.isEmpty {
            membership = RaftMembership(voters: configuration.peers.filter { $0.key != nodeID })
        }
        return regions.withLock { $0.majorityRegion(of: membership, own: region, id: nodeID) }
    }

    /// The region `member` said it was started in (this member's own for itself); nil when unknown.
    public func region(of member: String) -> String? {
        member == nodeID ? region : regions.withLock { $0.said[member] }
    }

    /// Names the region's id on every replication connection from now on, and refuses members of
    /// another (``RaftTransport/identify(as:group:regionID:address:)``).
    func identify(regionID: UInt64) {
        let own = addresses.withLock { $0[nodeID] } ?? ""
        transport.identify(as: nodeID, group: group, regionID: regionID, address: own)
        namesRegionFlag.store(true, ordering: .releasing)
        logger.info("\(group): this region's id is \(RegionIdentified.described(regionID))")
    }

    /// Whether this member names its region's id on its connections.
    public var namesRegion: Bool { namesRegionFlag.load(ordering: .acquiring) }

    /// Names the region's id once entries that hold it commit: before anything else this member
    /// does with them, so that it never follows, or votes for, a member that does not name it once
    /// it could have (the first `region.identified` in the log is the one that wins, and views
    /// without an id have applied none). One atomic load per ready once named.
    func noteRegionID(committed entries: [LogEntry]) {
        guard !namesRegion else { return }
        for entry in entries where entry.kind == .record {
            if let record = Record.regionIdentified(entry.payload) {
                identify(regionID: record.regionID)
                return
            }
        }
    }

    /// Names the region's id once the views hold it (at start, after a snapshot's install).
    func noteRegionIDInViews() throws {
        guard !namesRegion, let id = try snapshots.views.pool.read({ try ViewStore.regionID($0) }) else { return }
        identify(regionID: id)
    }

    /// A member said its replication address in its hello: kept when this member knows none for
    /// it (it joined with a `--peer` list that predates that member, and has no membership yet).
    func learnAddress(from hello: ConnectionHello) {
        guard !hello.address.isEmpty, hello.from != nodeID, Validation.hostAndPort(hello.address) != nil else { return }
        let learned = addresses.withLock { addresses in
            guard addresses[hello.from] == nil else { return false }
            addresses[hello.from] = hello.address
            return true
        }
        if learned { logger.notice("\(group): \(hello.from) is at \(hello.address), as it said connecting in") }
    }
}
