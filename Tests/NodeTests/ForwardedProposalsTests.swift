import Testing

@testable import Node

@Suite struct ForwardedProposalsTests {
    let payload: [[UInt8]] = [Array("p".utf8)]

    @Test(
        "a parked proposal is handed out once, to any leader; one a member refused waits a pause before it is sent to that member again"
    )
    func parkingAndRefusals() {
        let proposals = ForwardedProposals()
        // (The clock is passed in: the test does not depend on how soon one call follows another.)
        let refused = ContinuousClock.now
        let paused = refused + ForwardedProposals.refusalPause
        proposals.add(1, payload, appliesOnce: true)
        proposals.add(2, payload, appliesOnce: false)
        #expect(proposals.appliesOnce(1) && !proposals.appliesOnce(2))
        #expect(!proposals.hasParked && proposals.unpark(for: "a").isEmpty)

        #expect(proposals.park(1, because: .noLeader))
        #expect(proposals.park(2, because: .refused, refusedBy: "a", at: refused))
        #expect(proposals.hasParked)
        // "a" refused 2 just now: only 1 goes to it; the other goes to another leader at once.
        #expect(proposals.unpark(for: "a", at: refused).map(\.id) == [1])
        #expect(proposals.unpark(for: "a", at: paused - .milliseconds(1)).isEmpty)
        #expect(proposals.unpark(for: "b", at: refused).map(\.id) == [2])
        #expect(!proposals.hasParked)

        // Refused again: kept as before, but not counted again.
        #expect(!proposals.park(2, because: .refused, refusedBy: "a", at: refused))
        #expect(proposals.parkedCount == 1)
        #expect(
            proposals.unpark(for: "a", at: paused).map(\.id) == [2],
            "sent to the member that refused it after the pause")

        // Once its caller has its answer, it is gone.
        proposals.remove(2)
        #expect(!proposals.park(2, because: .leaderChanged))
        #expect(proposals.unpark(for: "a").isEmpty && !proposals.appliesOnce(2))
    }
}

extension ForwardedProposalsTests {
    @Test("a forward that applies once and had no answer in 500 ms is due again, once per 500 ms; others never")
    func unansweredForwardsAreSentAgain() {
        let proposals = ForwardedProposals()
        let payload: [[UInt8]] = [[1, 2, 3]]
        proposals.add(1, payload, appliesOnce: true)
        proposals.add(2, payload, appliesOnce: false)
        proposals.add(3, payload, appliesOnce: true)
        proposals.sent(1)
        proposals.sent(2)
        let start = ContinuousClock.now
        #expect(proposals.unanswered(at: start + .milliseconds(100)).isEmpty)
        // 1 is due; 2 could apply twice, and 3 was never sent.
        let due = proposals.unanswered(at: start + .milliseconds(600))
        #expect(due.map(\.id) == [1] && due.map(\.first) == [true] && due[0].payloads == payload)
        #expect(proposals.unanswered(at: start + .milliseconds(700)).isEmpty)
        #expect(proposals.unanswered(at: start + .milliseconds(1200)).map(\.first) == [false])
        // Parked (no leader known), it waits for one instead; answered, it is forgotten.
        proposals.park(1, because: .noLeader)
        #expect(proposals.unanswered(at: start + .seconds(5)).isEmpty)
        proposals.remove(1)
        #expect(proposals.unanswered(at: start + .seconds(10)).isEmpty)
    }
}
