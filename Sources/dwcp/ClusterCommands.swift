import ArgumentParser
import Node
import Store

/// `dwcp cluster status|add-member|promote|remove-member|transfer-leader`: the region's Raft group.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Show and change the region's replication group.",
        subcommands: [ClusterStatus.self, AddMember.self, Promote.self, RemoveMember.self, TransferLeader.self])

    struct ClusterStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Every member as the node asked sees it (ask the leader for lag).")

        @OptionGroup var client: ClientOptions

        @Flag(name: .long, help: "Print JSON.")
        var json = false

        func run() async throws {
            let status = try await client.client().call(.GET, "/v1/cluster")
            if json {
                print(status.serialized())
                return
            }
            guard status["replicated"] == .bool(true) else {
                print("\(status["node_id"]?.stringValue ?? "?") is a single-node region (no replication)")
                return
            }
            print(
                "node \(status["node_id"]?.stringValue ?? "?"): \(status["role"]?.stringValue ?? "?") in term "
                    + "\(status["term"]?.stringValue ?? "?"), leader \(status["leader"]?.stringValue ?? "none"), "
                    + "last \(status["last_index"]?.stringValue ?? "?"), commit \(status["commit_index"]?.stringValue ?? "?"), "
                    + "applied \(status["applied_index"]?.stringValue ?? "?")")
            print("ID          ADDRESS                 ROLE      MATCH     LAG")
            if case .array(let members) = status["members"] {
                for member in members {
                    let columns = [
                        (member["id"]?.stringValue ?? "?", 12), (member["address"]?.stringValue ?? "?", 24),
                        (member["role"]?.stringValue ?? "?", 10), (member["match_index"]?.stringValue ?? "-", 10),
                        (member["lag"]?.stringValue ?? "-", 0),
                    ]
                    print(
                        columns.map { $0.0.padding(toLength: max($0.1, $0.0.count + 1), withPad: " ", startingAt: 0) }
                            .joined())
                }
            }
        }
    }

    struct AddMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-member", abstract: "Add a member, ID@HOST:PORT (start it with `dwcp serve --join`).")

        @Argument(help: "ID@HOST:PORT of the new member's replication port.")
        var member: String

        @Flag(name: .long, help: "Add it as a learner (it receives the log but does not vote); promote it later.")
        var learner = false

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let (id, address) = try usage { try parsePeer(member, what: "member") }
            let answer = try await client.client().call(
                .POST, "/v1/cluster/members",
                body: .object([("id", .string(id)), ("address", .string(address)), ("learner", .bool(learner))]))
            print(
                "added \(id) as a \(learner ? "learner" : "voter") at index \(answer["log_index"]?.stringValue ?? "?")")
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a learner a voter.")

        @Argument(help: "The learner's id.")
        var id: String

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(id, what: "node") }
            let answer = try await client.client().call(.POST, "/v1/cluster/members/\(id)/promote")
            print("promoted \(id) at index \(answer["log_index"]?.stringValue ?? "?")")
        }
    }

    struct RemoveMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-member", abstract: "Remove a member.")

        @Argument(help: "The member's id.")
        var id: String

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(id, what: "node") }
            let answer = try await client.client().call(.DELETE, "/v1/cluster/members/\(id)")
            print("removed \(id) at index \(answer["log_index"]?.stringValue ?? "?")")
        }
    }

    struct TransferLeader: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "transfer-leader", abstract: "Hand leadership to another voter.")

        @Argument(help: "The voter's id.")
        var id: String

        @OptionGroup var client: ClientOptions

        func run() async throws {
            try usage { try Validation.name(id, what: "node") }
            _ = try await client.client().call(.POST, "/v1/cluster/leader", body: .object([("id", .string(id))]))
            print("leadership is moving to \(id)")
        }
    }
}
