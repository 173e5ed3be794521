import ArgumentParser
import Testing

@testable import dwcp

/// `dwcp cluster verify` names a member as different only against a digest most members share.
@Suite struct VerifyVerdictTests {
    typealias Answer = ClusterCommand.Verify.Answer

    static func answer(_ id: String, hosts: String, schema: String = "010") -> Answer {
        Answer(id: id, schemaVersion: schema, tables: ["hosts": (1, hosts), "vms": (2, "v")])
    }

    /// The error `report` ends with (nil: none), its code and message.
    static func verdict(_ answers: [Answer]) throws -> CLIError? {
        let verify = try ClusterCommand.Verify.parse(["--json"])
        do {
            try verify.report(answers, at: 42)
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
                Answer(id: "n1", schemaVersion: "010", tables: ["hosts": (1, "X"), "vms": (2, "v")]),
                Answer(id: "n2", schemaVersion: "010", tables: ["hosts": (1, "h"), "vms": (1, "Y")]),
                Answer(id: "n3", schemaVersion: "010", tables: ["hosts": (1, "h"), "vms": (2, "v")]),
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
