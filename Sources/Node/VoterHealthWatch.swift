import NIOCore
import NIOPosix

/// Every second, on every member: while it leads, asks Raft which voters have not answered
/// within an election timeout and logs what ``VoterHealth`` says of them (a warning for a voter
/// silent 5 s, a notice when it answers again); `dwcp_raft_voters_silent` counts those warned of.
struct VoterHealthWatch: Sendable {
    static let checkEvery: Duration = .seconds(1)

    func run(node: Node, raft: RaftConsensus) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        var health = VoterHealth()
        while true {
            try await loop.sleep(for: Self.checkEvery)
            let (silent, voters, quorum) = raft.state.withLock { raft in
                (raft.isLeader ? raft.silentVoters : nil, Set(raft.membership.voters.keys), raft.membership.quorum)
            }
            for report in health.note(silent: silent, voters: voters, quorum: quorum, at: .now) {
                switch report {
                case .silent: node.logger.warning("\(VoterHealth.line(report))")
                case .back: node.logger.notice("\(VoterHealth.line(report))")
                }
            }
            node.metrics.votersSilent.record(health.silentCount)
        }
    }
}
