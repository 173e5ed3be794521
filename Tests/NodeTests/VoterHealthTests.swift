import Testing

@testable import Node

/// What the leader says of voters that stop answering, and when.
@Suite struct VoterHealthTests {
    let start = ContinuousClock.now
    let three: Set<String> = ["n1", "n2", "n3"]

    @Test("a voter silent 5 s is warned of once, with the region's margin; its return is noted")
    func silentThenBack() {
        var health = VoterHealth()
        #expect(health.note(silent: ["n3"], voters: three, quorum: 2, at: start).isEmpty)
        #expect(health.note(silent: ["n3"], voters: three, quorum: 2, at: start + .seconds(4)).isEmpty)
        let warned = health.note(silent: ["n3"], voters: three, quorum: 2, at: start + .seconds(5))
        #expect(warned == [.silent("n3", for: .seconds(5), answering: 2, voters: 3, quorum: 2)])
        #expect(
            warned.map(VoterHealth.line)
                == [
                    "voter n3 has not answered for 5 s: the region runs on 2 of its 3 voters, the fewest that can commit: one more lost and it takes no writes"
                ])
        #expect(health.silentCount == 1)
        #expect(health.note(silent: ["n3"], voters: three, quorum: 2, at: start + .seconds(60)).isEmpty)
        let back = health.note(silent: [], voters: three, quorum: 2, at: start + .seconds(190))
        #expect(back.map(VoterHealth.line) == ["voter n3 answers again after 3 min silent: 3 of 3 voters answer"])
        #expect(health.silentCount == 0)
    }

    @Test("a short silence says nothing; a removed voter is forgotten unsaid; a member that stops leading forgets")
    func quietCases() {
        var health = VoterHealth()
        _ = health.note(silent: ["n2"], voters: three, quorum: 2, at: start)
        #expect(health.note(silent: [], voters: three, quorum: 2, at: start + .seconds(3)).isEmpty)
        _ = health.note(silent: ["n3"], voters: three, quorum: 2, at: start)
        #expect(health.note(silent: ["n3"], voters: three, quorum: 2, at: start + .seconds(6)).count == 1)
        #expect(health.note(silent: [], voters: ["n1", "n2"], quorum: 2, at: start + .seconds(7)).isEmpty)
        #expect(health.silentCount == 0)
        _ = health.note(silent: ["n2"], voters: three, quorum: 2, at: start + .seconds(8))
        #expect(health.note(silent: nil, voters: three, quorum: 2, at: start + .seconds(20)).isEmpty)
        #expect(health.note(silent: ["n2"], voters: three, quorum: 2, at: start + .seconds(21)).isEmpty)
    }

    @Test("five voters: the margin is told as it shrinks, and a region without a majority says it cannot commit")
    func fiveVoters() {
        var health = VoterHealth()
        let five: Set<String> = ["n1", "n2", "n3", "n4", "n5"]
        _ = health.note(silent: ["n4", "n5"], voters: five, quorum: 3, at: start)
        let lines = health.note(silent: ["n4", "n5"], voters: five, quorum: 3, at: start + .seconds(5)).map(
            VoterHealth.line)
        #expect(
            lines == [
                "voter n4 has not answered for 5 s: the region runs on 4 of its 5 voters, 3 are needed to commit",
                "voter n5 has not answered for 5 s: the region runs on 3 of its 5 voters, the fewest that can commit: one more lost and it takes no writes",
            ])
        _ = health.note(silent: ["n3", "n4", "n5"], voters: five, quorum: 3, at: start + .seconds(6))
        let lost = health.note(silent: ["n3", "n4", "n5"], voters: five, quorum: 3, at: start + .seconds(11)).map(
            VoterHealth.line)
        #expect(
            lost == [
                "voter n3 has not answered for 5 s: the region runs on 2 of its 5 voters, too few to commit (3 are needed)"
            ])
    }
}
