import Foundation
import Store
import TestSupport
import Testing

@testable import Node

@Suite struct NodeIntentTests {
    static let gib: Int64 = 1 << 30

    static func vm(_ name: String, cpus: Int = 1, memory: Int64 = 512 << 20, region: String = "", image: String = "")
        -> Intent
    {
        .createVM(VMCreated(name: name, region: region, cpus: cpus, memoryBytes: memory, image: image))
    }

    static func host(_ name: String, cpus: Int = 4, memory: Int64 = 8 * gib, region: String = "eu") -> Intent {
        .addHost(HostAdded(name: name, region: region, cpus: cpus, memoryBytes: memory))
    }

    @Test("a created VM is placed (bin-packing opens the largest empty host first), explained, and accounted")
    func createAndPlace() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("small", cpus: 2, memory: 4 * Self.gib))
            _ = try await node.submit(Self.host("large", cpus: 16, memory: 64 * Self.gib))
            let receipt = try await node.submit(Self.vm("web-1", cpus: 2, memory: 2 * Self.gib))
            #expect(receipt.outcome == "applied")
            #expect(
                try await rows(node, "SELECT host, actual_state, image FROM vms")
                    == #"[["large","scheduled","builtin:hello"]]"#)
            #expect(
                try await rows(node, "SELECT name, cpus_used, memory_used_bytes FROM hosts ORDER BY name")
                    == #"[["large",2,2147483648],["small",0,0]]"#)
            #expect(
                try await rows(
                    node,
                    "SELECT json_extract(explanation, '$.policy'), json_extract(explanation, '$.candidates[0].host') FROM placements"
                ) == #"[["binpack","large"]]"#)
            _ = try await node.submit(.deleteVM(name: "web-1"))
            #expect(try await rows(node, "SELECT sum(cpus_used), sum(memory_used_bytes) FROM hosts") == "[[0,0]]")
        }
    }

    @Test("a VM that fits nowhere is unschedulable with the reason, and is placed when room appears")
    func unschedulableThenPlaced() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("h1", cpus: 2))
            _ = try await node.submit(Self.vm("big", cpus: 4))
            #expect(
                try await rows(node, "SELECT actual_state, reason FROM vms")
                    == #"[["unschedulable","no host in eu with 4 free CPUs and 512MiB free memory; of 1 host: 1 with fewer than 4 CPUs in all"]]"#
            )
            let added = try await node.submit(Self.host("h2", cpus: 8))
            // The scheduler reacts to the new capacity on its own.
            for _ in 0..<100 {
                if try await rows(node, "SELECT host FROM vms") == #"[["h2"]]"# { break }
                _ = try await node.applied.wait(until: node.applied.value + 1, timeout: .milliseconds(50))
            }
            #expect(try await rows(node, "SELECT host, actual_state FROM vms") == #"[["h2","scheduled"]]"#)
            #expect(node.applied.value > added.logIndex)
            #expect(
                try await rows(node, "SELECT to_state FROM vm_events ORDER BY log_index")
                    == #"[["pending"],["unschedulable"],["scheduled"]]"#)
        }
    }

    @Test("a request id is 1-128 bytes without control characters, whatever its characters")
    func requestIDBounds() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("h1"))
            let before = node.log.lastIndex
            // One character of 2,000 combining marks (4 KiB), 65 two-byte characters, a newline, empty.
            for id in ["a" + String(repeating: "\u{301}", count: 2_000), String(repeating: "é", count: 65), "a\nb", ""]
            {
                do {
                    _ = try await node.submit(Self.vm("web-1"), requestID: id)
                    Issue.record("request id of \(id.utf8.count) bytes taken")
                } catch let error as NodeError {
                    #expect(error.code == .invalid)
                    #expect(error.message.contains("1-128 bytes (UTF-8) without control characters"))
                }
            }
            #expect(node.log.lastIndex == before)
            // 64 two-byte characters are 128 bytes: taken.
            let taken = try await node.submit(Self.vm("web-1"), requestID: String(repeating: "é", count: 64))
            #expect(taken.outcome != "duplicate")
        }
    }

    @Test("retrying a request id applies it once")
    func idempotentRetry() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("h1"))
            let first = try await node.submit(Self.vm("web-1"), requestID: "req-42")
            let again = try await node.submit(Self.vm("web-1"), requestID: "req-42")
            #expect(again.logIndex == first.logIndex)
            #expect(again.outcome == "duplicate")
            #expect(try await rows(node, "SELECT count(*) FROM vms") == "[[1]]")
            #expect(try await rows(node, "SELECT count(*) FROM intents WHERE request_id = 'req-42'") == "[[1]]")
            // The same id for another intent is a mistake, refused, not answered as a retry.
            for other in [Self.vm("web-2"), .deleteVM(name: "web-1")] {
                await #expect {
                    try await node.submit(other, requestID: "req-42")
                } throws: { error in
                    let message = (error as? NodeError)?.message ?? ""
                    return (error as? NodeError)?.code == .conflict
                        && message.contains(
                            "request id req-42 was used at log index \(first.logIndex) for vm.create web-1")
                }
            }
            #expect(try await rows(node, "SELECT count(*) FROM vms") == "[[1]]")
            // And for the same intent with other fields: a retry repeats the request as it was.
            let labels = try await node.submit(.setHostLabels(name: "h1", labels: ["a": "1"]), requestID: "req-44")
            let retried = try await node.submit(.setHostLabels(name: "h1", labels: ["a": "1"]), requestID: "req-44")
            #expect(retried.outcome == "duplicate" && retried.logIndex == labels.logIndex)
            await #expect {
                try await node.submit(.setHostLabels(name: "h1", labels: ["a": "2"]), requestID: "req-44")
            } throws: { error in
                (error as? NodeError)?.code == .conflict
                    && "\(error)".contains(
                        "request id req-44 was used at log index \(labels.logIndex) for host.label h1 with other fields"
                    )
            }
            #expect(try await rows(node, "SELECT labels FROM hosts WHERE name = 'h1'") == #"[["{\"a\":\"1\"}"]]"#)
            // A VM retried as it was asked (its defaults, region and image, filled in alike) is a
            // retry; with another size it is refused, in a batch too.
            let vm = VMCreated(name: "web-9", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")
            let made = try await node.createVMs([vm], requestID: "req-45", checkIndex: nil)
            let remade = try await node.createVMs([vm], requestID: "req-45", checkIndex: nil)
            #expect(remade.map(\.outcome) == ["duplicate"] && remade.map(\.logIndex) == made.map(\.logIndex))
            var bigger = vm
            bigger.cpus = 2
            await #expect {
                try await node.createVMs([bigger], requestID: "req-45", checkIndex: nil)
            } throws: { error in
                (error as? NodeError)?.code == .conflict && "\(error)".contains("with other fields")
            }
            // So is it for a batch: the id of a host's intent, reused for VMs made in one batch.
            _ = try await node.submit(Self.host("h2"), requestID: "req-43")
            await #expect {
                try await node.createVMs(
                    [VMCreated(name: "web-3", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")],
                    requestID: "req-43", checkIndex: node.applied.value)
            } throws: { error in
                (error as? NodeError)?.code == .conflict
                    && "\(error)".contains("request id req-43 was used at log index")
            }
        }
    }

    @Test("a batch's request id names the batch: retried whole it is a retry; used for anything else it is refused")
    func batchRequestIDs() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("h1"))
            func vms(_ names: String...) -> [VMCreated] {
                names.map { VMCreated(name: $0, region: "", cpus: 1, memoryBytes: 32 << 20, image: "") }
            }
            let made = try await node.createVMs(vms("bt-1", "bt-2"), requestID: "B1", checkIndex: nil)
            let retried = try await node.createVMs(vms("bt-1", "bt-2"), requestID: "B1", checkIndex: nil)
            #expect(retried.map(\.outcome) == ["duplicate", "duplicate"])
            #expect(retried.map(\.logIndex) == made.map(\.logIndex))
            let batch = "request id B1 was used at log index \(made[0].logIndex) for a batch of 2 VM creations"
            func refused(_ asked: String, _ attempt: () async throws -> Void) async {
                await #expect {
                    try await attempt()
                } throws: { error in
                    (error as? NodeError)?.code == .conflict
                        && "\(error)".contains("\(batch) (request ids B1#1 to B1#2), not \(asked)")
                }
            }
            // One intent with the batch's id: another request (it was applied as new).
            await refused("vm.delete bt-1") { _ = try await node.submit(.deleteVM(name: "bt-1"), requestID: "B1") }
            await refused("vm.create bt-1") {
                _ = try await node.createVMs(vms("bt-1"), requestID: "B1", checkIndex: nil)
            }
            // The batch again with another count (it said "VM bt-1 already exists").
            await refused("a batch of 3 VM creations") {
                _ = try await node.createVMs(vms("bt-1", "bt-2", "bt-3"), requestID: "B1", checkIndex: nil)
            }
            #expect(try await rows(node, "SELECT count(*) FROM vms") == "[[2]]")
            // One intent's id, reused for a batch.
            let single = try await node.submit(.deleteVM(name: "bt-2"), requestID: "S1")
            await #expect {
                try await node.createVMs(vms("st-1", "st-2"), requestID: "S1", checkIndex: nil)
            } throws: { error in
                (error as? NodeError)?.code == .conflict
                    && "\(error)".contains(
                        "request id S1 was used at log index \(single.logIndex) for vm.delete bt-2, not a batch of 2 VM creations"
                    )
            }
            #expect(try await rows(node, "SELECT name FROM vms") == #"[["bt-1"]]"#)
        }
    }

    /// 32 concurrent label changes of h1 through `submitting(n)`; checks each receipt shows the row
    /// as its own intent left it when its answer came from the apply, and one at or after it
    /// otherwise (read afterwards, a later entry may have changed it), and that no answer is left.
    static func changeLabelsConcurrently(_ nodes: [Node], submitting: @escaping @Sendable (Int) -> Node) async throws {
        let receipts = try await withThrowingTaskGroup(of: (Int, IntentReceipt).self) { group in
            for n in 0..<32 {
                group.addTask {
                    (n, try await submitting(n).submit(.setHostLabels(name: "h1", labels: ["n": "\(n)"])))
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(Set(receipts.values.map(\.logIndex)).count == 32)
        for (n, receipt) in receipts {
            #expect(receipt.outcome == "applied")
            guard case .int(let updated) = receipt.subject?["updated_index"] else {
                Issue.record("no updated_index in \(String(describing: receipt.subject))")
                continue
            }
            #expect(updated >= Int64(receipt.logIndex))
            if updated == Int64(receipt.logIndex) {
                #expect(receipt.subject?["labels"] == .object([("n", .string("\(n)"))]))
            }
        }
        for node in nodes { #expect(node.intentAnswers.counts.held == 0) }
    }

    @Test(
        "concurrent changes of one host on a single node are each answered with the row as their intent left it, or a later one, and no answer is left behind"
    )
    func answersOnASingleNode() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("h1"))
            try await Self.changeLabelsConcurrently([node]) { _ in node }
            // (Which of them were read in the apply depends on how the group commit woke them.)
            let counts = node.intentAnswers.counts
            #expect(counts.taken + counts.readAfterwards == 33)
        }
    }

    @Test(
        "in a region, the leader's intents are all answered from the apply (asked for before they commit), a follower's forwards too or afterwards, each with its own row; no answer is left"
    )
    func answersInARegion() async throws {
        let dir = TemporaryDirectory()
        try await withThreeMembers(dir) { nodes, _ in
            let leader = try leader(of: nodes)
            let follower = try #require(nodes.first { $0 !== leader })
            let added = try await leader.submit(Self.host("h1"))
            // (The follower checks its own views for the host before it forwards.)
            try await follower.waitUntilApplied(added.logIndex)
            let before = leader.intentAnswers.counts
            try await Self.changeLabelsConcurrently(nodes) { n in n % 2 == 0 ? leader : follower }
            // The leader asks where its entry sits before it commits, which needs a follower's
            // answer: the apply cannot come first.
            let after = leader.intentAnswers.counts
            #expect(after.taken - before.taken == 16)
            #expect(after.readAfterwards == before.readAfterwards)
            // A follower learns the index from the leader's answer, which may come after the
            // commit reached it: either way, each of its 16 answers was counted once.
            let followed = follower.intentAnswers.counts
            #expect(followed.taken + followed.readAfterwards == 16)
        }
    }

    @Test(
        "a member whose views are behind the leader's looks again, caught up, before it refuses an intent: one the leader just acknowledged is never denied"
    )
    func followerChecksCaughtUp() async throws {
        let dir = TemporaryDirectory()
        // Followers apply every 2 s unless asked: their views lag what the leader acknowledged.
        let delays: [String: Duration] = ["n1": .seconds(2), "n2": .seconds(2), "n3": .seconds(2)]
        try await withThreeMembers(dir, applyDelays: delays) { nodes, _ in
            let leader = try leader(of: nodes)
            let follower = try #require(nodes.first { $0 !== leader })
            let added = try await leader.submit(Self.host("h9"))
            let lagged = follower.applied.value < added.logIndex
            // (It said "no host named h9": its views did not have it yet.)
            let labelled = try await follower.submit(.setHostLabels(name: "h9", labels: ["a": "b"]))
            #expect(labelled.outcome == "applied")
            let vm = try await leader.submit(Self.vm("v9"))
            // (It said "no VM named v9".)
            let deleted = try await follower.submit(.deleteVM(name: "v9"))
            #expect(deleted.outcome == "applied" && deleted.logIndex > vm.logIndex)
            // A batch too: b-1, which the follower has seen created, deleted through the leader
            // and created again through the follower (it said "VM b-1 already exists").
            let b1 = VMCreated(name: "b-1", region: "", cpus: 1, memoryBytes: 256 << 20, image: "")
            let created = try await leader.submit(.createVM(b1))
            try await follower.waitUntilApplied(created.logIndex)
            _ = try await leader.submit(.deleteVM(name: "b-1"))
            var b2 = b1
            b2.name = "b-2"
            let batch = try await follower.createVMs([b1, b2], requestID: nil, checkIndex: nil)
            #expect(batch.map(\.outcome) == ["applied", "applied"])
            if !lagged {
                print("followerChecksCaughtUp: the follower had applied h9 already; the first case proved nothing")
            }
        }
    }

    @Test("a request the node itself proposed twice is answered as applied, at its first copy")
    func ownCopyAppliedFirst() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir, consensus: { ProposingTwice(log: $0) }) { node in
            _ = try await node.submit(Self.host("h1"))
            let labelled = try await node.submit(.setHostLabels(name: "h1", labels: ["rack": "a"]), requestID: "r1")
            #expect(labelled.outcome == "applied")
            #expect(labelled.logIndex == 2)
            #expect(labelled.subject?["labels"] == .object([("rack", .string("a"))]))
            let created = try await node.submit(Self.vm("web-1"), requestID: "r2")
            #expect(created.outcome == "applied")
            #expect(created.subject?["host"]?.stringValue == "h1")
            #expect(
                try await rows(
                    node, "SELECT request_id, outcome FROM intents WHERE request_id IS NOT NULL ORDER BY 1, log_index")
                    == #"[["r1","applied"],["r1","duplicate"],["r2","applied"],["r2","duplicate"]]"#)
            let again = try await node.submit(.setHostLabels(name: "h1", labels: ["rack": "a"]), requestID: "r1")
            #expect(again.outcome == "duplicate")
            #expect(again.logIndex == 2)
        }
    }

    @Test("a request the node proposed twice whose first copy was refused at apply time is answered with that conflict")
    func ownCopyRefusedFirst() async throws {
        let dir = TemporaryDirectory()
        // The host is removed between the check and the apply (a removal committed just before).
        let removal = Record(at: 1, .hostRemoved(HostRemoved(name: "h1"))).encoded()
        try await withRunningNode(dir, consensus: { ProposingTwice(log: $0, committedFirst: [removal]) }) { node in
            _ = try await node.submit(Self.host("h1"))
            await #expect {
                try await node.submit(.setHostLabels(name: "h1", labels: ["rack": "a"]), requestID: "r1")
            } throws: { error in
                let error = error as? NodeError
                return error?.code == .conflict && error?.message.contains("request r1, log index 3") == true
            }
            #expect(
                try await rows(node, "SELECT log_index, outcome FROM intents WHERE request_id = 'r1' ORDER BY 1")
                    == #"[[3,"rejected"],[4,"duplicate"]]"#)
        }
    }

    @Test("another submission of the same request that applied first makes this one a duplicate")
    func rivalCopyAppliedFirst() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir, consensus: { ProposingTwice(log: $0, rivalFirst: true) }) { node in
            _ = try await node.submit(Self.host("h1"))
            let labelled = try await node.submit(.setHostLabels(name: "h1", labels: ["rack": "a"]), requestID: "r1")
            #expect(labelled.outcome == "duplicate")
            #expect(labelled.logIndex == 2)
            #expect(
                try await rows(node, "SELECT log_index, outcome FROM intents WHERE request_id = 'r1' ORDER BY 1")
                    == #"[[2,"applied"],[3,"duplicate"],[4,"duplicate"]]"#)
        }
    }

    static let invalidIntents: [(Intent, NodeError.Code, String)] = [
        (vm("Web-1"), .invalid, "invalid VM name 'Web-1'"),
        (vm("-web"), .invalid, "invalid VM name '-web'"),
        (vm("web_1"), .invalid, "invalid VM name 'web_1'"),
        (vm(""), .invalid, "invalid VM name ''"),
        (vm(String(repeating: "a", count: 64)), .invalid, "invalid VM name"),
        (vm("ok", cpus: 0), .invalid, "invalid CPU count 0: must be 1-64"),
        (vm("ok", cpus: 65), .invalid, "invalid CPU count 65"),
        (vm("ok", memory: 0), .invalid, "invalid memory 0 bytes"),
        (vm("ok", memory: 1_000_000_000), .invalid, "must be a multiple of 4KiB"),
        (vm("ok", memory: 2 << 40), .invalid, "a VM has 1MiB to 1TiB"),
        (vm("ok", image: "builtin:nope"), .invalid, "unknown image 'builtin:nope'"),
        (vm("ok", region: "EU"), .invalid, "invalid region name 'EU'"),
        (vm("ok", region: "us"), .invalid, "VM ok is in region us, but this node serves region eu"),
        (host("h9", region: "us"), .invalid, "host h9 is in region us, but this node serves region eu"),
        (
            .createVM(
                VMCreated(name: "ok", region: "", cpus: 1, memoryBytes: 64 << 20, image: "", labels: ["bad key": "v"])),
            .invalid, "invalid label key 'bad key'"
        ),
        (
            .createVM(
                VMCreated(
                    name: "ok", region: "", cpus: 1, memoryBytes: 64 << 20, image: "",
                    labels: Dictionary(uniqueKeysWithValues: (1...65).map { ("k\($0)", "v") }))),
            .invalid, "too many labels: 65, at most 64"
        ),
        // 127 characters of two bytes each, and one character of 301 scalars: both past 253 bytes.
        (
            .setHostLabels(name: "h1", labels: ["k": String(repeating: "é", count: 127)]), .invalid,
            "invalid value for label 'k': up to 253 bytes"
        ),
        (
            .setHostLabels(name: "h1", labels: ["k": "a" + String(repeating: "\u{301}", count: 300)]), .invalid,
            "invalid value for label 'k': up to 253 bytes"
        ),
        (
            .createVM(
                VMCreated(
                    name: "ok", region: "", cpus: 1, memoryBytes: 64 << 20, image: "",
                    labels: ["guest.note": "hi interval_ms=3000"])),
            .invalid,
            "invalid value for label 'guest.note': a guest.* label becomes note=VALUE on the guest's command line"
        ),
        // A guest's command line holds 255 bytes: "a=" and 228 more, " rate=1000" and
        // " working_set=16M" make 256 (it was cut at 255: the guest read working_set=16, bytes).
        (
            .createVM(
                VMCreated(
                    name: "ok", region: "", cpus: 1, memoryBytes: 64 << 20, image: "",
                    labels: [
                        "guest.a": String(repeating: "v", count: 228), "guest.working_set": "16M",
                        "guest.rate": "1000",
                    ])),
            .invalid,
            "the guest.* labels make a command line of 256 bytes (KEY=VALUE for each, spaces between); a guest takes at most 255"
        ),
        (
            .createVM(
                VMCreated(name: "ok", region: "", cpus: 1, memoryBytes: 64 << 20, image: "", labels: ["guest.": "x"])),
            .invalid, "invalid label 'guest.': a guest.* label names a key of the guest's command line"
        ),
        (vm("ok", memory: 1 << 20), .invalid, "image builtin:hello needs at least 4 MiB of memory; the VM has 1 MiB"),
        // (Rounded, a VM a page short of the least read "4 MiB; the VM has 4 MiB".)
        (vm("ok", memory: (4 << 20) - 4096), .invalid, "needs at least 4 MiB of memory; the VM has 4092 KiB"),
        (
            vm("ok", image: "builtin:nope"), .invalid,
            "unknown image 'builtin:nope': available images are builtin:counter"
        ),
        (host("h-1", cpus: 0), .invalid, "invalid CPU count 0"),
        (host("h 1"), .invalid, "invalid host name 'h 1'"),
        (vm("taken"), .conflict, "VM taken already exists"),
        (host("h1"), .conflict, "host h1 already exists"),
        (.removeHost(name: "ghost"), .notFound, "no host named ghost"),
        (.removeHost(name: "h1"), .conflict, "host h1 has 1 VM placed on it (taken)"),
        (.setDesiredState(vm: "ghost", .stopped), .notFound, "no VM named ghost"),
        (.deleteVM(name: "ghost"), .notFound, "no VM named ghost"),
    ]

    @Test("every bad intent is refused with a clear message and writes nothing")
    func refusals() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("h1"))
            _ = try await node.submit(Self.vm("taken"))
            let before = node.log.lastIndex
            for (intent, code, message) in Self.invalidIntents {
                await #expect {
                    try await node.submit(intent, requestID: UUID().uuidString)
                } throws: { error in
                    guard let e = error as? NodeError else { return false }
                    return e.code == code && e.message.contains(message)
                }
            }
            #expect(node.log.lastIndex == before)
        }
    }

    static let sizesAsWritten: [(String, Int64)] = [
        ("512MiB", 512 << 20), ("2GiB", 2 << 30), ("1.5GiB", 3 << 29), ("4096", 4096), ("1TiB", 1 << 40),
        ("1PiB", 1 << 50), (" 64KiB ", 64 << 10), ("7B", 7), ("1.25KiB", 1280), ("0.5MiB", 1 << 19),
        ("1.500GiB", 3 << 29), ("0.0000152587890625PiB", 1 << 34), ("8191.75PiB", Int64.max - (1 << 48) + 1),
    ]

    @Test("sizes parse the way users write them", arguments: sizesAsWritten)
    func sizes(text: String, bytes: Int64) throws {
        #expect(try ByteSize.parse(text) == bytes)
        // Written back exactly, in the largest unit that holds it whole.
        #expect(try ByteSize.parse(ByteSize.exactText(bytes).replacingOccurrences(of: " bytes", with: "")) == bytes)
    }

    @Test(
        "malformed sizes are refused",
        arguments: [
            "", "GiB", "1GB", "1.5", "-1GiB", "1..5GiB", "0x10", "1e3", "abc", "99999999999TiB", "1.00000000001KiB",
            // Read as a Double, this was 1GiB exactly.
            "1.0000000000000000001GiB", "1.00000000000000000000001PiB", "8192PiB",
        ])
    func badSizes(text: String) {
        #expect(throws: NodeError.self) { try ByteSize.parse(text) }
    }
}

extension NodeIntentTests {
    @Test(
        "a node registering its machine as a host whose request id another intent took registers under a new one and goes on"
    )
    func registrationWithATakenRequestID() async throws {
        let dir = TemporaryDirectory()
        // Someone used the id the node registers under ("register-NODE-HOST") for another host.
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("decoy"), requestID: "register-n1-h9")
        }
        let registration = HostRegistration(name: "h9", cpus: 4, memoryBytes: 8 << 30)
        try await withRunningNode(dir, register: registration) { node in
            #expect(try await waitForRows(node, "SELECT count(*) FROM hosts WHERE name = 'h9'", "[[1]]") == "[[1]]")
            // The node still takes intents.
            _ = try await node.submit(Self.host("h10"))
        }
    }

    @Test(
        "a machine whose host was removed registers again when its node restarts (its first request id would only repeat the old answer)"
    )
    func registrationAfterRemoval() async throws {
        let dir = TemporaryDirectory()
        let registration = HostRegistration(name: "h9", cpus: 4, memoryBytes: 8 << 30)
        try await withRunningNode(dir, register: registration) { node in
            #expect(try await waitForRows(node, "SELECT count(*) FROM hosts WHERE name = 'h9'", "[[1]]") == "[[1]]")
            _ = try await node.submit(.removeHost(name: "h9"))
        }
        try await withRunningNode(dir, register: registration) { node in
            let rows = try await waitForRows(node, "SELECT count(*) FROM hosts WHERE name = 'h9'", "[[1]]")
            #expect(rows == "[[1]]", "the host did not come back")
        }
    }

    @Test("the hosts this node's agent registered under another name, with the VMs left on them, are found")
    func formerAgentHostsAreFound() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            _ = try await node.submit(Self.host("old", cpus: 16, memory: 64 * Self.gib), requestID: "host-agent-n1-old")
            _ = try await node.submit(Self.host("spare", cpus: 2), requestID: "host-agent-n1-spare")
            _ = try await node.submit(Self.host("by-hand", cpus: 2), requestID: "host-agent-n10-by-hand")
            _ = try await node.submit(Self.vm("web-1"))
            let placed = try await waitForRows(node, "SELECT host FROM vms WHERE name = 'web-1'", #"[["old"]]"#)
            try #require(placed == #"[["old"]]"#)
            let former = try await node.formerAgentHosts(besides: "new")
            #expect(former.map(\.name) == ["old", "spare"], "another node's (n10) is not this one's")
            #expect(former.map(\.vms) == [1, 0])
            #expect(try await node.formerAgentHosts(besides: "old").map(\.name) == ["spare"])
        }
    }
}
