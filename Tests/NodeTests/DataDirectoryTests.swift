import Foundation
import Logging
import Store
import TestSupport
import Testing

@testable import Node

/// The data directory: made (or refused) in words, locked to one process, and recording whom it
/// belongs to at its first start so that another node id, region or mode is refused
/// (docs/architecture.md, the invariants table).
@Suite struct DataDirectoryTests {
    static func configuration(
        _ directory: String, id: String = "n1", region: String = "eu", replicated: Bool = true
    ) -> NodeConfiguration {
        var configuration = NodeConfiguration(dataDirectory: directory, nodeID: id, region: region)
        if replicated {
            configuration.replication = ReplicationConfiguration(
                listenHost: "127.0.0.1", listenPort: 0, peers: [id: "127.0.0.1:1"])
        }
        return configuration
    }

    @Test(
        "the first start records the identity; the same one starts again; with entries in the log any other is refused, naming what differs"
    )
    func mismatchesAreRefused() throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        let logger = Logger(label: "identity-test")
        let file = data + "/identity.json"
        func check(_ configuration: NodeConfiguration, logIsEmpty: Bool = false) throws {
            if let pending = try DataDirectoryIdentity.check(configuration, logIsEmpty: logIsEmpty) {
                try DataDirectoryIdentity.record(pending, in: configuration.dataDirectory, logger: logger)
            }
        }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try check(Self.configuration(data))
        let recorded = try #require(FileManager.default.contents(atPath: file))
        #expect(
            try JSONDecoder().decode(DataDirectoryIdentity.self, from: recorded)
                == DataDirectoryIdentity(nodeID: "n1", region: "eu", replicated: true))
        try check(Self.configuration(data))

        let serveAs = "start it with dwcp serve --node-id n1 --region eu, or give this node a data directory of its own"
        let refusals: [(NodeConfiguration, String)] = [
            (
                Self.configuration(data, id: "n2"),
                "belongs to member n1 of region eu, not to n2 of region eu: " + serveAs
            ),
            (Self.configuration(data, region: "us"), "not to n1 of region us: " + serveAs),
            (Self.configuration(data, id: "n2", region: "us"), "not to n2 of region us: " + serveAs),
            (Self.configuration(data, replicated: false), "started without --listen (or as dwcp dev)"),
            (Self.configuration(data, id: "dev", region: "local", replicated: false), "(or as dwcp dev)"),
        ]
        for (configuration, words) in refusals {
            #expect {
                try check(configuration)
            } throws: { error in
                let error = error as? NodeError
                return error?.code == .invalid && error?.message.contains(words) == true
            }
        }
        // Refusals change nothing.
        #expect(FileManager.default.contents(atPath: file) == recorded)

        // A single node's directory cannot become a member.
        let single = dir.file("single")
        try FileManager.default.createDirectory(atPath: single, withIntermediateDirectories: true)
        try check(Self.configuration(single, id: "dev", replicated: false))
        #expect {
            try check(Self.configuration(single, id: "dev"))
        } throws: { ($0 as? NodeError)?.message.contains("written without --listen: it cannot become") == true }

        // While the log is empty, a start that differs is recorded instead: a wrong first start
        // (here a single node, then a member under another id) ties nothing down.
        try check(Self.configuration(single, id: "n4"), logIsEmpty: true)
        #expect(
            try JSONDecoder().decode(
                DataDirectoryIdentity.self,
                from: try #require(FileManager.default.contents(atPath: single + "/identity.json")))
                == DataDirectoryIdentity(nodeID: "n4", region: "eu", replicated: true))

        // An empty file counts as none while the log is empty; beside entries it is damage (the
        // file is written atomically); a damaged one says so; one that cannot be read is not
        // taken for a missing one.
        try Data().write(to: URL(fileURLWithPath: file))
        #expect {
            try check(Self.configuration(data, region: "us"))
        } throws: { ($0 as? NodeError)?.message.contains("identity.json is empty, but the log holds entries") == true }
        try check(Self.configuration(data), logIsEmpty: true)
        #expect(FileManager.default.contents(atPath: file) == recorded)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: file))
        #expect {
            try check(Self.configuration(data))
        } throws: { ($0 as? NodeError)?.message.contains("identity.json is damaged") == true }
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.createDirectory(atPath: file, withIntermediateDirectories: false)
        #expect {
            try check(Self.configuration(data))
        } throws: { ($0 as? NodeError)?.message.contains("cannot read \(file)") == true }
    }

    @Test("a node refuses a data directory whose log another node id wrote")
    func nodeRefusesAnotherID() async throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        let logger = Logger(label: "identity-test")
        var first: Node? = try Node(
            configuration: Self.configuration(data, id: "dev", region: "local", replicated: false), logger: logger)
        let record = Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "local", cpus: 4, memoryBytes: 1 << 30)))
        _ = try await first?.log.appendNext(term: 1, payloads: [record.encoded()])
        first = nil
        #expect {
            try Node(
                configuration: Self.configuration(data, id: "n1", region: "local", replicated: false), logger: logger)
        } throws: {
            ($0 as? NodeError)?.message.contains("belongs to single node dev (region local), not to n1 of region local")
                == true
        }
    }

    @Test(
        "a directory whose identity file is gone: a start refused for any reason records nothing, and another region than its hosts' is refused"
    )
    func missingIdentityIsRecordedOnlyByAStartThatPasses() async throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        let file = data + "/identity.json"
        let logger = Logger(label: "identity-test")
        let dev = Self.configuration(data, id: "dev", region: "local", replicated: false)
        var first: Node? = try Node(configuration: dev, logger: logger)
        let record = Record(at: 1, .hostAdded(HostAdded(name: "h1", region: "local", cpus: 4, memoryBytes: 1 << 30)))
        _ = try await first?.log.appendNext(term: 1, payloads: [record.encoded()])
        first = nil
        try FileManager.default.removeItem(atPath: file)

        // As a region's member: refused (a single node's log), and the file is not written.
        #expect {
            try Node(configuration: Self.configuration(data, id: "dev", region: "local"), logger: logger)
        } throws: { ($0 as? NodeError)?.message.contains("single-node log without a membership") == true }
        #expect(!FileManager.default.fileExists(atPath: file), "a refused start recorded its identity")
        // Under another region than its hosts': refused, naming theirs.
        #expect {
            try Node(
                configuration: Self.configuration(data, id: "dev", region: "eu", replicated: false), logger: logger)
        } throws: { ($0 as? NodeError)?.message.contains("holds hosts and VMs of region local alone, not eu") == true }
        #expect(!FileManager.default.fileExists(atPath: file))
        // As what it was: it opens, and is recorded.
        _ = try Node(configuration: dev, logger: logger)

        // A region member's log (its first entry the region's membership) with no identity file is
        // refused as a single node, which would commit entries alone.
        let member = dir.file("member")
        do {
            let log = try LogStore(path: member + "/log")
            let membership = MembershipRecord(voters: ["n1": "127.0.0.1:7101", "n2": "127.0.0.1:7102"])
            try await log.append([LogEntry(index: 1, term: 1, kind: .membership, payload: membership.encoded())])
            log.close()
        }
        #expect {
            try Node(configuration: Self.configuration(member, id: "n1", replicated: false), logger: logger)
        } throws: { ($0 as? NodeError)?.message.contains("its log is a region member's") == true }
        #expect(!FileManager.default.fileExists(atPath: member + "/identity.json"))
        // So is one whose first entry is no membership (compacted, its membership in the
        // snapshot; here without one): its Raft state tells it.
        let compacted = dir.file("compacted")
        do {
            let log = try LogStore(path: compacted + "/log")
            try await log.write(
                truncateFrom: nil, entries: [LogEntry(index: 1, term: 3, payload: record.encoded())],
                hardState: HardState(term: 3, vote: "n2", commit: 1))
            log.close()
        }
        #expect {
            try Node(
                configuration: Self.configuration(compacted, id: "n1", region: "local", replicated: false),
                logger: logger)
        } throws: { ($0 as? NodeError)?.message.contains("its log is a region member's") == true }
        #expect(!FileManager.default.fileExists(atPath: compacted + "/identity.json"))
        #expect(
            try JSONDecoder().decode(
                DataDirectoryIdentity.self, from: try #require(FileManager.default.contents(atPath: file)))
                == DataDirectoryIdentity(nodeID: "dev", region: "local", replicated: false))
    }

    @Test("a data directory that cannot be made or used is refused in words, not as a Foundation error")
    func unusableDirectories() throws {
        let dir = TemporaryDirectory()
        try Node.createDataDirectory(dir.file("a/b/c"))
        try Node.createDataDirectory(dir.file("a/b/c"))  // again: it exists
        try Data().write(to: URL(fileURLWithPath: dir.file("file")))
        let cases = [
            (dir.file("file"), "cannot use \(dir.file("file")) as the data directory: it is not a directory"),
            (
                dir.file("file/sub"),
                "cannot create the data directory \(dir.file("file/sub")): \(dir.file("file/sub")): Not a directory"
            ),
        ]
        for (path, message) in cases {
            #expect(throws: NodeError.self) { try Node.createDataDirectory(path) }
            do { try Node.createDataDirectory(path) } catch let error as NodeError { #expect(error.message == message) }
        }
    }

    @Test("a second node on a data directory in use is refused, naming the holder; once the first is gone, it opens")
    func oneProcessPerDirectory() throws {
        let dir = TemporaryDirectory()
        let data = dir.file("data")
        let logger = Logger(label: "identity-test")
        let configuration = Self.configuration(data, id: "dev", region: "local", replicated: false)
        var first: Node? = try Node(configuration: configuration, logger: logger)
        #expect(first != nil)
        #expect {
            try Node(configuration: configuration, logger: logger)
        } throws: { error in
            (error as? NodeError)?.message
                == "\(data) is in use by another dwcp (pid \(getpid())): a data directory serves one process at a time"
        }
        first = nil
        _ = try Node(configuration: configuration, logger: logger)
    }
}

extension DataDirectoryTests {
    @Test("a lock holder on its way out (a zombie here) is told from one that runs")
    func exitingHolder() async throws {
        #expect(!DataDirectoryLock.isExiting(getpid()))
        #expect(!DataDirectoryLock.isExiting(Int32.max))
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { for arg in argv { free(arg) } }
        #expect(posix_spawn(&pid, "/bin/true", nil, nil, argv, environ) == 0)
        // Not waited for: once it has run, it is a zombie until it is.
        var exiting = false
        for _ in 0..<200 where !exiting {
            try await Task.sleep(for: .milliseconds(50))
            exiting = DataDirectoryLock.isExiting(pid)
        }
        #expect(exiting)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
}
