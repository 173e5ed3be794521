import ArgumentParser
import Node
import Store
import Testing

@testable import dwcp

/// `dwcp cluster verify` names a member as different only against a digest most members share.
@Suite struct VerifyVerdictTests {
    typealias Answer = ViewsComparison.Answer

    static func answer(_ id: String, hosts: String, schema: String = "010") -> Answer {
        tables(id, schema: schema, hosts: (1, hosts), vms: (2, "v"))
    }

    static func tables(_ id: String, schema: String = "010", hosts: (Int, String), vms: (Int, String)) -> Answer {
        Answer(
            id: id, schemaVersion: schema,
            tables: [
                TableDigest(table: "hosts", rows: hosts.0, sha256: hosts.1),
                TableDigest(table: "vms", rows: vms.0, sha256: vms.1),
            ])
    }

    /// The error `report` ends with (nil: none), its code and message.
    static func verdict(_ answers: [Answer]) throws -> CLIError? {
        let verify = try ClusterCommand.Verify.parse(["--json"])
        do {
            try verify.report(ViewsComparison(logIndex: 42, answers: answers))
            return nil
        } catch let error as CLIError {
            return error
        }
    }

    @Test("all alike: no error; one of three different: named, status 2")
    func majority() throws {
        #expect(try Self.verdict([Self.answer("n1", hosts: "a"), Self.answer("n2", hosts: "a")]) == nil)
        let one = try #require(
            try Self.verdict([
                Self.answer("n1", hosts: "a"), Self.answer("n2", hosts: "b"), Self.answer("n3", hosts: "a"),
            ]))
        #expect(one.code == .differs && one.message.contains("the views of n2 differ"), "\(one.message)")
        let comparison = ViewsComparison(
            logIndex: 42,
            answers: [Self.answer("n3", hosts: "a"), Self.answer("n2", hosts: "b"), Self.answer("n1", hosts: "a")])
        #expect(comparison.answers.map(\.id) == ["n1", "n2", "n3"])
        #expect(comparison.answers.map { comparison.verdict(of: $0) } == [.same, .differs(["hosts"]), .same])
        #expect(comparison.differingMembers.map(\.id) == ["n2"] && !comparison.agree)
        #expect(
            ClusterCommand.Verify.line(comparison.answers[1], in: comparison)
                == "DIFFERENT: hosts (rows: 1 here, 1 on the others)")
    }

    @Test("no digest shared by more than half: nobody is blamed, status 2; too few answers: status 1")
    func noMajority() throws {
        let split = try #require(
            try Self.verdict([
                Self.answer("n1", hosts: "a"), Self.answer("n2", hosts: "b"), Answer(id: "n3", error: "down"),
            ]))
        #expect(
            split.code == .differs
                && split.message.contains("no digest of hosts is shared by more than half of the 3 members"),
            "\(split.message)")
        #expect(!split.message.contains("the views of n"))
        #expect(split.message.contains("(hosts: n1 has one digest, n2 has another; n3 gave none)"), "\(split.message)")
        let unsettled = ViewsComparison(
            logIndex: 42,
            answers: [Self.answer("n1", hosts: "a"), Self.answer("n2", hosts: "b"), Answer(id: "n3", error: "down")])
        #expect(
            unsettled.tablesWithoutMajority == ["hosts"]
                && unsettled.verdict(of: unsettled.answers[0]) == .noMajority(["hosts"]))
        #expect(unsettled.verdict(of: unsettled.answers[2]) == .unanswered("down") && unsettled.majorityAnswered)
        let lonely = try #require(
            try Self.verdict([
                Self.answer("n1", hosts: "a"), Answer(id: "n2", error: "x"), Answer(id: "n3", error: "y"),
            ]))
        #expect(
            lonely.code == .unreachable && lonely.message.contains("at most half of the members answered"),
            "\(lonely.message)")
        let partial = try #require(
            try Self.verdict([
                Self.answer("n1", hosts: "a"), Self.answer("n2", hosts: "a"), Answer(id: "n3", error: "x"),
            ]))
        #expect(
            partial.code == .unreachable && partial.message.contains("the 2 that answered agree"), "\(partial.message)")
        #expect(partial.message.contains("--log-index 42"))
    }

    @Test("two members damaged in two tables: each named with its table, by each table's majority")
    func perTable() throws {
        let damaged = try #require(
            try Self.verdict([
                Self.tables("n1", hosts: (1, "X"), vms: (2, "v")),
                Self.tables("n2", hosts: (1, "h"), vms: (1, "Y")),
                Self.tables("n3", hosts: (1, "h"), vms: (2, "v")),
            ]))
        #expect(
            damaged.code == .differs && damaged.message.contains("the views of n1, n2 differ"), "\(damaged.message)")
    }

    @Test("members of two schema versions are not compared")
    func schemaVersions() throws {
        let mixed = try #require(
            try Self.verdict([
                Self.answer("n1", hosts: "a"), Self.answer("n2", hosts: "b", schema: "011"),
                Self.answer("n3", hosts: "a"),
            ]))
        #expect(mixed.code == .unreachable && mixed.message.contains("different schema versions"), "\(mixed.message)")
    }

    @Test("a table only one member of three holds blames that member, not the two without it")
    func strayTable() throws {
        var stray = Self.answer("n2", hosts: "a")
        stray.tables?["scratch"] = TableDigest(table: "scratch", rows: 3, sha256: "s")
        let comparison = ViewsComparison(
            logIndex: 42, answers: [Self.answer("n1", hosts: "a"), stray, Self.answer("n3", hosts: "a")])
        #expect(comparison.answers.map { comparison.verdict(of: $0) } == [.same, .differs(["scratch"]), .same])
        #expect(
            ClusterCommand.Verify.line(comparison.answers[1], in: comparison)
                == "DIFFERENT: scratch (rows: 3 here, no table on the others)")
    }

    @Test(
        "cluster status words the leader's last verify: alike, different, incomplete, not yet, no marker, an unknown outcome"
    )
    func statusLine() throws {
        let describe = ClusterCommand.ClusterStatus.describe(verification:)
        func answer(_ fields: [(String, JSONValue)]) -> JSONValue {
            .object(
                [
                    ("verified", .bool(true)), ("verified_by", .string("n1")), ("seconds_ago", .int(130)),
                    ("every", .string("1h")),
                ] + fields)
        }
        #expect(
            describe(answer([("outcome", .string("same")), ("log_index", .int(7)), ("members", .int(3))]))
                == "the same on all 3 members at log index 7 (verified 2 min ago by n1, every 1h)")
        let differs = describe(
            answer([
                ("outcome", .string("differs")), ("log_index", .int(7)), ("members", .int(3)),
                (
                    "differences",
                    .array([.object([("id", .string("n2")), ("tables", .array([.string("hosts")]))])])
                ),
            ]))
        #expect(
            differs
                == "DIFFERENT on n2 (hosts) at log index 7 (verified 2 min ago by n1, every 1h); dwcp cluster verify shows every member's tables"
        )
        let incomplete = describe(
            answer([
                ("outcome", .string("incomplete")), ("log_index", .int(7)), ("members", .int(3)),
                ("answered", .int(2)),
                ("unanswered", .array([.object([("id", .string("n3")), ("error", .string("down"))])])),
            ]))
        #expect(
            incomplete
                == "no digest from n3 (down) at log index 7; the 2 that answered agree (verified 2 min ago by n1, every 1h)"
        )
        #expect(
            describe(.object([("verified", .bool(false)), ("every", .string("1h"))]))
                == "not verified yet (the leader verifies every 1h; dwcp cluster verify checks now)")
        #expect(describe(.object([("verified", .bool(false)), ("every", .null)])).contains("--verify-every 0"))
        #expect(
            describe(answer([("outcome", .string("no_marker")), ("error", .string("no quorum"))]))
                == "the last verify (2 min ago by n1, every 1h) made no marker: no quorum")
        #expect(
            describe(answer([("outcome", .string("later")), ("log_index", .int(7))]))
                == "later at log index 7 (verified 2 min ago by n1, every 1h)")
        // "incomplete" with nothing listed (a leader's answer this CLI does not expect) does not trap.
        #expect(
            describe(answer([("outcome", .string("incomplete")), ("log_index", .int(7))])).hasPrefix(
                "incomplete at log index 7"))
    }
}
