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
}
