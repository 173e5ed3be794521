import Foundation
import Store
import TestSupport
import Testing

@testable import Hypervisor
@testable import Node

@Suite("Host agent plan")
struct HostAgentPlanTests {
    func vm(
        _ name: String = "a", desired: String = "running", actual: String = "scheduled", desiredIndex: Int64 = 2,
        reportedIndex: Int64 = 0
    ) -> HostedVM {
        HostedVM(
            name: name, cpus: 1, memoryBytes: 64 << 20, image: "builtin:counter", desiredState: desired,
            actualState: actual, desiredIndex: desiredIndex, reportedIndex: reportedIndex)
    }

    @Test("a placed VM is started once; a guest that halted is not started again until asked")
    func startOnce() {
        var plan = HostAgentPlan()
        #expect(plan.actions(hosted: [vm()], running: [:]) == [.start(vm(), reason: "")])
        // Started: it runs here now, then halts; its reports arrive later than the next pass.
        #expect(plan.actions(hosted: [vm()], running: ["a": 0]).isEmpty)
        #expect(plan.actions(hosted: [vm()], running: [:]).isEmpty)
        let halted = vm(actual: "stopped", reportedIndex: 9)
        #expect(plan.actions(hosted: [halted], running: [:]).isEmpty)
        // `dwcp vm start` again: a newer desired index.
        let again = vm(actual: "stopped", desiredIndex: 10, reportedIndex: 9)
        #expect(plan.actions(hosted: [again], running: [:]) == [.start(again, reason: "")])
    }

    @Test("a start that does not fit the memory left waits and comes again in a later pass, once; others go on")
    func startWaitsForMemory() {
        var plan = HostAgentPlan()
        let small = vm("s")  // 64 MiB, as a
        func memory(heldMiB: Int64) -> HostAgentPlan.Memory { .init(offered: 150 << 20, held: heldMiB << 20) }
        // 150 MiB offered, 50 held by a microVM that ended: a fits, s no longer does.
        #expect(
            plan.actions(hosted: [vm(), small], running: [:], memory: memory(heldMiB: 50)) == [
                .start(vm(), reason: ""), .waitForMemory(small),
            ])
        // a runs; the ended microVM has not given its memory back yet.
        #expect(
            plan.actions(hosted: [vm(), small], running: ["a": 0], memory: memory(heldMiB: 114))
                == [.waitForMemory(small)])
        // Now it has.
        #expect(
            plan.actions(hosted: [vm(), small], running: ["a": 0], memory: memory(heldMiB: 64))
                == [.start(small, reason: "")])
        // Performed this time: not given again.
        #expect(plan.actions(hosted: [vm(), small], running: ["a": 0, "s": 0], memory: memory(heldMiB: 128)).isEmpty)
        // A start asked again after a stop waits the same way, and comes as it was asked.
        let stopped = vm(actual: "stopped", desiredIndex: 10, reportedIndex: 9)
        var restart = HostAgentPlan()
        #expect(restart.actions(hosted: [vm(desired: "stopped", desiredIndex: 5)], running: ["a": 0]) == [.stop("a")])
        #expect(
            restart.actions(hosted: [stopped], running: [:], memory: .init(offered: 100 << 20, held: 64 << 20))
                == [.waitForMemory(stopped)])
        #expect(
            restart.actions(hosted: [stopped], running: [:], memory: .init(offered: 100 << 20, held: 0))
                == [.start(stopped, reason: "")])
        #expect(restart.actions(hosted: [stopped], running: [:]).isEmpty)
    }

    @Test("after an agent restart, VMs the views show running are restarted, stopped ones are reported")
    func reconcile() {
        var plan = HostAgentPlan()
        let wasRunning = vm("a", actual: "running", reportedIndex: 5)
        let shouldStop = vm("b", desired: "stopped", actual: "running", desiredIndex: 2, reportedIndex: 5)
        let crashed = vm("c", actual: "crashed", reportedIndex: 5)
        let actions = plan.actions(hosted: [wasRunning, shouldStop, crashed], running: [:])
        #expect(
            actions == [
                .start(wasRunning, reason: "restarted: it was running when the host agent stopped"),
                .reportStopped("b", reason: "not running after the host agent restarted; its desired state is stopped"),
            ])
        #expect(plan.actions(hosted: [wasRunning, shouldStop, crashed], running: ["a": 0]).isEmpty)
        // A start asked while it ran (met then) moved its desired index past its last report:
        // still a restart, said so (it read "starting on HOST (cold start)", as a first start).
        var afterStart = HostAgentPlan()
        let startedAgain = vm("d", actual: "running", desiredIndex: 7, reportedIndex: 5)
        #expect(
            afterStart.actions(hosted: [startedAgain], running: [:])
                == [.start(startedAgain, reason: "restarted: it was running when the host agent stopped")])
        // After its member was removed and added back, that is the reason given.
        var readded = HostAgentPlan(endedWhen: "this member was removed from its region")
        #expect(
            readded.actions(hosted: [wasRunning], running: [:])
                == [
                    .start(wasRunning, reason: "restarted: it was running when this member was removed from its region")
                ])
    }

    @Test(
        "a microVM started for a VM deleted since, whose name was created again and placed here, is torn down and the new VM started"
    )
    func nameCreatedAgain() {
        var plan = HostAgentPlan()
        var renewed = vm("a", desired: "running", actual: "scheduled", desiredIndex: 21)
        renewed.createdIndex = 21
        // The old `a` (created at 10) still runs here.
        #expect(plan.actions(hosted: [renewed], running: ["a": 10]) == [.tearDown("a")])
        #expect(plan.actions(hosted: [renewed], running: [:]) == [.start(renewed, reason: "")])
        // Started for the new one: nothing more to do.
        #expect(plan.actions(hosted: [renewed], running: ["a": 21]).isEmpty)
    }

    @Test(
        "a start right after a stop starts the VM, whichever order the stop's report committed in; a start asked while it runs does not restart it once it halts"
    )
    func startAfterStopAndRedundantStart() {
        var plan = HostAgentPlan()
        let stopping = vm(desired: "stopped", actual: "running", desiredIndex: 30, reportedIndex: 21)
        #expect(plan.actions(hosted: [stopping], running: ["a": 0]) == [.stop("a")])
        // `vm start` at 31, and the report of the stop (32) committed after it.
        let restarted = vm(desired: "running", actual: "stopped", desiredIndex: 31, reportedIndex: 32)
        #expect(plan.actions(hosted: [restarted], running: [:]) == [.start(restarted, reason: "")])

        var other = HostAgentPlan()
        let first = vm("b", desired: "running", actual: "scheduled", desiredIndex: 20)
        #expect(other.actions(hosted: [first], running: [:]) == [.start(first, reason: "")])
        // `vm start` again at 25 while it runs: nothing to do.
        let redundant = vm("b", desired: "running", actual: "running", desiredIndex: 25, reportedIndex: 22)
        #expect(other.actions(hosted: [redundant], running: ["b": 0]).isEmpty)
        // The guest halts; its report has not committed yet. It is not started again.
        #expect(other.actions(hosted: [redundant], running: [:]).isEmpty)
    }

    @Test(
        "a VM created stopped is reported stopped, not left scheduled; one stopped whose report was lost is reported again"
    )
    func stoppedVMsAreReported() {
        var plan = HostAgentPlan()
        let createdStopped = vm("a", desired: "stopped", actual: "scheduled", desiredIndex: 2)
        // Stopped at 8; its end was never reported (the views still say running, from 5).
        let reportLost = vm("b", desired: "stopped", actual: "running", desiredIndex: 8, reportedIndex: 5)
        #expect(
            plan.actions(hosted: [createdStopped, reportLost], running: [:]) == [
                .reportStopped("a", reason: "its desired state is stopped"),
                .reportStopped("b", reason: "not running here; its desired state is stopped"),
            ])
        // Once each: the report is on its way.
        #expect(plan.actions(hosted: [createdStopped, reportLost], running: [:]).isEmpty)
    }

    @Test(
        "a VM evacuated while its agent was cut off and placed back on its host while its microVM ran is reported running, once; the agent's own start is not"
    )
    func placedBackWhileItRan() {
        var plan = HostAgentPlan()
        let placed = vm()
        #expect(plan.actions(hosted: [placed], running: [:]) == [.start(placed, reason: "")])
        // Its own start: the views show `scheduled` until the report of it commits. Nothing to report.
        #expect(plan.actions(hosted: [placed], running: ["a": 0]).isEmpty)
        let running = vm(actual: "running", reportedIndex: 4)
        #expect(plan.actions(hosted: [running], running: ["a": 0]).isEmpty)
        // Evacuated and placed here again (the same VM, the same desired state) while it ran on:
        // the views wait for a start.
        let placedAgain = vm(actual: "scheduled", reportedIndex: 4)
        let reason =
            "placed on this host again while its microVM here ran on (it was taken off this host while its host agent was cut off)"
        #expect(plan.actions(hosted: [placedAgain], running: ["a": 0]) == [.reportRunning("a", reason: reason)])
        // Once: the report is on its way.
        #expect(plan.actions(hosted: [placedAgain], running: ["a": 0]).isEmpty)
        // It did not commit (no leader for longer than the agent's tries): the next pass gives it again.
        plan.reportLost("a")
        #expect(plan.actions(hosted: [placedAgain], running: ["a": 0]) == [.reportRunning("a", reason: reason)])
        // A VM the agent saw running, then ended (a halt), then started again by request, shows
        // `scheduled` only while its new start is reported: not taken for one placed again.
        var other = HostAgentPlan()
        #expect(other.actions(hosted: [running], running: ["a": 0]).isEmpty)
        #expect(other.actions(hosted: [vm(actual: "stopped", reportedIndex: 6)], running: [:]).isEmpty)
        let askedAgain = vm(actual: "scheduled", desiredIndex: 8, reportedIndex: 6)
        #expect(other.actions(hosted: [askedAgain], running: [:]) == [.start(askedAgain, reason: "")])
        #expect(other.actions(hosted: [askedAgain], running: ["a": 0]).isEmpty)
    }

    @Test("a stop request stops a running VM; a VM no longer placed here is torn down")
    func stopAndTearDown() {
        var plan = HostAgentPlan()
        let stopping = vm(desired: "stopped", actual: "running", desiredIndex: 8, reportedIndex: 5)
        #expect(plan.actions(hosted: [stopping], running: ["a": 0]) == [.stop("a")])
        #expect(plan.actions(hosted: [], running: ["a": 0, "z": 0]) == [.tearDown("a"), .tearDown("z")])
        #expect(plan.handled.isEmpty, "forgets VMs that are gone")
    }

    @Test("guest labels become the guest's command line")
    func commandLine() {
        var hosted = vm()
        hosted.labels = ["guest.rate": "100", "app": "web", "guest.working_set": "16M"]
        #expect(hosted.guestCommandLine == "rate=100 working_set=16M")
    }
}

@Suite("Host agent change gate")
struct VMsChangedIndexTests {
    @Test("a host's vms_changed_index moves with every change to its VMs, and only with those")
    func movesWithTheHostsVMs() throws {
        let dir = TemporaryDirectory()
        let views = try ViewStore(path: dir.file("views.sqlite"))
        var index: UInt64 = 0
        var changed: Int64? = nil
        /// Applies `body` and says whether h1's index moved.
        func changesH1(_ body: Store.Record.Body) throws -> Bool {
            index += 1
            _ = try views.apply([LogEntry(index: index, term: 1, payload: Store.Record(at: 1, body).encoded())])
            let next = try views.read {
                try Int64.fetchOne($0, sql: "SELECT vms_changed_index FROM hosts WHERE name = 'h1'")
            }
            defer { changed = next }
            return next != changed
        }
        func create(_ name: String) -> Store.Record.Body {
            .vmCreated(VMCreated(name: name, region: "eu", cpus: 1, memoryBytes: 1 << 20, image: "builtin:hello"))
        }
        #expect(try changesH1(.hostAdded(HostAdded(name: "h1", region: "eu", cpus: 8, memoryBytes: 8 << 30))))
        #expect(changed == 0)
        #expect(try !changesH1(.hostAdded(HostAdded(name: "h2", region: "eu", cpus: 8, memoryBytes: 8 << 30))))
        #expect(try !changesH1(create("a")), "not placed yet")
        #expect(try changesH1(.vmPlaced(VMPlaced(vm: "a", host: "h1", explanation: "{}"))))
        #expect(try !changesH1(create("b")))
        #expect(try !changesH1(.vmPlaced(VMPlaced(vm: "b", host: "h2", explanation: "{}"))), "placed elsewhere")
        #expect(try changesH1(.vmStateReported(VMStateReported(vm: "a", host: "h1", state: "running"))))
        #expect(try !changesH1(.vmStateReported(VMStateReported(vm: "b", host: "h2", state: "running"))))
        #expect(try changesH1(.vmDesiredStateSet(VMDesiredStateSet(name: "a", desiredState: .stopped))))
        #expect(try !changesH1(.vmDesiredStateSet(VMDesiredStateSet(name: "b", desiredState: .stopped))))
        #expect(try !changesH1(.vmDeleted(VMDeleted(name: "b"))))
        #expect(try !changesH1(.hostLabelsSet(HostLabelsSet(name: "h1", labels: ["ssd": "1"]))), "not a VM")
        #expect(try changesH1(.vmDeleted(VMDeleted(name: "a"))))
        #expect(changed == Int64(index))
    }
}

@Suite("Host agent wake-up")
struct HostAgentWakeTests {
    @Test(
        "the agent's wait ends when a microVM ended, or gave its memory back, after its pass looked, even with no commit"
    )
    func wakesOnAnEnd() async throws {
        let dir = TemporaryDirectory()
        try await withRunningNode(dir) { node in
            let local = HostAgent.LocalVMs()
            let seen = node.applied.value
            let (_, endedSeen) = local.snapshot()
            // The microVM ends after the pass read the count.
            let (cause, release) = local.end("gone", memoryBytes: 64 << 20)
            #expect(cause == nil)
            #expect(local.heldMemoryBytes == 64 << 20, "an ended microVM's memory counts until it is given back")
            let woke = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    _ = try await HostAgent.waitForChange(node: node, after: seen, endedAfter: endedSeen, local: local)
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(woke, "the wait slept through the end")
            #expect(node.applied.value == seen, "no commit woke it")
            // Its memory given back moves the count too, which wakes the wait (a start that waits
            // for memory goes on).
            let (_, afterEnd) = local.snapshot()
            local.released(release)
            #expect(local.heldMemoryBytes == 0)
            #expect(local.snapshot().ended > afterEnd, "giving the memory back would not wake the wait")
        }
    }
}

@Suite("Console file reads")
struct ConsoleReadTests {
    @Test(
        "a follow reads what was added since its last read; at a rotation, the old file's last output, then the new file from its start"
    )
    func followsAcrossRotation() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("console.log")
        func append(_ text: String, to file: String = path) throws {
            if !FileManager.default.fileExists(atPath: file) {
                FileManager.default.createFile(atPath: file, contents: nil)
            }
            let handle = try #require(FileHandle(forWritingAtPath: file))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            try handle.close()
        }
        let follower = ConsoleFollower(path: path)
        #expect(follower.newOutput() == Data(), "no file yet")
        try append("hello\n")
        #expect(follower.newOutput() == Data("hello\n".utf8))
        try append("more\n")
        #expect(follower.newOutput() == Data("more\n".utf8))
        #expect(follower.newOutput() == Data())
        // The guest writes, the console rotates, and the new file grows past the old offset, all
        // between two reads: nothing is lost or skipped (a follow by name and offset lost "last\n"
        // and the new file's first 11 bytes).
        try append("last\n")
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try append("a new file, longer\n")
        #expect(follower.newOutput() == Data("last\na new file, longer\n".utf8))
        try append("after\n")
        #expect(follower.newOutput() == Data("after\n".utf8))
    }
}

@Suite("Host agent memory")
struct HostAgentMemoryTests {
    @Test(
        "the memory a machine offers its VMs keeps an eighth of it, at least 1 GiB, for the node and the system",
        arguments: [
            (UInt64(64) << 30, Int64(56) << 30), (UInt64(8) << 30, Int64(7) << 30), (UInt64(4) << 30, Int64(3) << 30),
            (UInt64(512) << 20, Int64(1) << 20),
        ])
    func schedulableMemory(physical: UInt64, offered: Int64) {
        #expect(HostAgent.schedulableMemory(physical: physical) == offered)
    }
}

@Suite("Host agent without KVM")
struct HostAgentWithoutKVMTests {
    @Test("a node whose KVM device is missing runs without a host agent and registers no host")
    func noKVM() async throws {
        let dir = TemporaryDirectory()
        let agent = HostAgentConfiguration(hostName: "h1", kvmDevicePath: dir.file("no-kvm"))
        try await withRunningNode(dir, hostAgent: agent) { node in
            _ = try await node.submit(
                .createVM(
                    VMCreated(
                        name: "v", region: "eu", cpus: 1, memoryBytes: 64 << 20, image: "builtin:hello", labels: [:],
                        desiredState: .running)))
            // (Polled: the scheduler's decision may come after the create's answer on a loaded machine.)
            var state = ""
            let end = ContinuousClock.now + .seconds(20)
            repeat {
                try await Task.sleep(for: .milliseconds(100))
                state = try await rows(node, "SELECT actual_state FROM vms")
            } while state != "[[\"unschedulable\"]]" && ContinuousClock.now < end
            #expect(state == "[[\"unschedulable\"]]")
            #expect(try await rows(node, "SELECT count(*) FROM hosts") == "[[0]]")
        }
    }
}

/// How long a test waits for a state it expects. Generous: the waits end as soon as the state is
/// reached, and when every suite starts at once on a loaded 2-core machine, the host agent's first
/// steps (filling its VM pool, registering the host) took more than 10 s in one CI run.
let expectedStateTimeout = Duration.seconds(30)

/// Polls a query until its rows equal `expected` (or ``expectedStateTimeout`` passes); returns the last rows.
func waitForRows(_ node: Node, _ sql: String, _ expected: String) async throws -> String {
    var last = ""
    _ = try await waitForValue(within: expectedStateTimeout) { () async throws -> Bool? in
        last = try await rows(node, sql)
        return last == expected ? true : nil
    }
    return last
}

@Suite(
    "Host agent (KVM)", .serialized,
    .needsKVM)
struct HostAgentKVMTests {
    func create(_ node: Node, _ name: String, image: String, labels: [String: String] = [:]) async throws {
        _ = try await node.submit(
            .createVM(
                VMCreated(
                    name: name, region: "eu", cpus: 1, memoryBytes: 64 << 20, image: image, labels: labels,
                    desiredState: .running)))
    }

    @Test("counter: runs, heartbeats in its console, stops, starts again, and its files go with delete")
    func counterLifecycle() async throws {
        let dir = TemporaryDirectory()
        let agent = HostAgentConfiguration(hostName: "h1", poolSize: 1, poolMemoryBytes: 64 << 20)
        try await withRunningNode(dir, hostAgent: agent) { node in
            #expect(
                try await waitForRows(
                    node, "SELECT name, json_extract(labels, '$.hypervisor') FROM hosts", #"[["h1","kvm"]]"#)
                    == #"[["h1","kvm"]]"#)
            try await create(node, "c", image: "builtin:counter", labels: ["guest.interval_ms": "10"])
            #expect(
                try await waitForRows(node, "SELECT host, actual_state FROM vms", #"[["h1","running"]]"#)
                    == #"[["h1","running"]]"#)
            #expect(
                try await rows(node, "SELECT vm, path, boot_us >= first_entry_us, boot_us > 0 FROM vm_starts")
                    == #"[["c","pool",1,1]]"#)
            try await Task.sleep(for: .milliseconds(100))
            let console = String(decoding: try await node.console(of: "c"), as: UTF8.self)
            #expect(console.contains("heartbeat 3\n"))

            _ = try await node.submit(.setDesiredState(vm: "c", .stopped))
            #expect(
                try await waitForRows(
                    node, "SELECT actual_state, reason FROM vms", #"[["stopped","stopped by request"]]"#)
                    == #"[["stopped","stopped by request"]]"#)
            _ = try await node.submit(.setDesiredState(vm: "c", .running))
            #expect(try await waitForRows(node, "SELECT actual_state FROM vms", #"[["running"]]"#) == #"[["running"]]"#)
            #expect(
                try await rows(node, "SELECT to_state FROM vm_events WHERE vm = 'c' ORDER BY log_index")
                    == #"[["pending"],["scheduled"],["starting"],["running"],["stopped"],["starting"],["running"]]"#)

            #expect(FileManager.default.fileExists(atPath: dir.file("vms/c/console.log")))
            _ = try await node.submit(.deleteVM(name: "c"))
            let gone = try await waitUntil { !FileManager.default.fileExists(atPath: dir.file("vms/c")) }
            #expect(gone, "the VM's files are removed after delete")
            // Its microVM's end is counted, as torn down (it was not counted at all).
            let counted = try await waitUntil {
                metric(node.metrics.render(node: node), #"dwcp_vm_exits_total{how="torn_down"}"#) == 1
            }
            #expect(counted, "\(node.metrics.render(node: node))")
        }
    }

    @Test("a VM deleted and created again at once runs again, though its old microVM may still be ending")
    func deletedAndCreatedAgain() async throws {
        let dir = TemporaryDirectory()
        let agent = HostAgentConfiguration(hostName: "h1", poolSize: 0)
        try await withRunningNode(dir, hostAgent: agent) { node in
            _ = try await waitForRows(node, "SELECT count(*) FROM hosts", "[[1]]")
            try await create(node, "r", image: "builtin:counter")
            _ = try await waitForRows(node, "SELECT actual_state FROM vms", #"[["running"]]"#)
            _ = try await node.submit(.deleteVM(name: "r"))
            try await create(node, "r", image: "builtin:counter")
            #expect(
                try await waitForRows(
                    node, "SELECT actual_state, (SELECT count(*) FROM vm_starts) FROM vms", #"[["running",2]]"#)
                    == #"[["running",2]]"#)
        }
    }

    @Test(
        "a VM placed on the memory of a deleted VM whose microVM has not given it back yet starts once it has",
        .enabled(
            if: (try? String(contentsOfFile: "/proc/sys/vm/overcommit_memory", encoding: .utf8))?.hasPrefix("2")
                != true,
            "maps VMs of 3/5 of the machine's schedulable memory each without reserve, which vm.overcommit_memory=2 refuses"
        )
    )
    func startWaitsForReleasedMemory() async throws {
        let dir = TemporaryDirectory()
        let agent = HostAgentConfiguration(hostName: "h1", poolSize: 0)
        try await withRunningNode(dir, hostAgent: agent) { node in
            _ = try await waitForRows(node, "SELECT count(*) FROM hosts", "[[1]]")
            let hostMemory = try #require(
                Int64(try await rows(node, "SELECT memory_bytes FROM hosts").filter(\.isNumber)))
            // Each more than half of what the host offers: the two never fit at once. (Guest memory
            // is mapped without reserve and the guest touches little of it.)
            let size = hostMemory / 5 * 3 / 4096 * 4096
            func create(_ name: String) async throws {
                _ = try await node.submit(
                    .createVM(
                        VMCreated(
                            name: name, region: "eu", cpus: 1, memoryBytes: size, image: "builtin:counter",
                            desiredState: .running)))
            }
            try await create("a")
            #expect(try await waitForRows(node, "SELECT actual_state FROM vms", #"[["running"]]"#) == #"[["running"]]"#)
            // a's memory is not given back while the release queue holds still.
            await ExclusiveGate.releaseQueue.enter()
            MicroVM.releaseQueue.suspend()
            do {
                _ = try await node.submit(.deleteVM(name: "a"))
                try await create("b")
                #expect(
                    try await waitForRows(node, "SELECT host, actual_state FROM vms", #"[["h1","scheduled"]]"#)
                        == #"[["h1","scheduled"]]"#)
                try await Task.sleep(for: .seconds(1))
                #expect(
                    try await rows(node, "SELECT actual_state FROM vms") == #"[["scheduled"]]"#,
                    "b started while a's memory was still mapped")
                // The views say why it waits, not "waiting for its host agent", and so does /metrics.
                let reason = try await rows(node, "SELECT reason FROM vms")
                #expect(reason.contains("waits for memory: the microVMs here still hold"), "\(reason)")
                #expect(metric(node.metrics.render(node: node), "dwcp_host_vms_waiting_for_memory") == 1)
            } catch {
                MicroVM.releaseQueue.resume()
                await ExclusiveGate.releaseQueue.leave()
                throw error
            }
            MicroVM.releaseQueue.resume()
            await ExclusiveGate.releaseQueue.leave()
            let after = try await waitForRows(node, "SELECT actual_state FROM vms", #"[["running"]]"#)
            let all = try await rows(node, "SELECT name, actual_state, reason FROM vms")
            #expect(after == #"[["running"]]"#, "\(all)")
            #expect(metric(node.metrics.render(node: node), "dwcp_host_vms_waiting_for_memory") == 0)
        }
    }

    @Test("hello ends stopped; a crashing guest ends crashed with the reason and the agent goes on")
    func helloAndCrash() async throws {
        let dir = TemporaryDirectory()
        let agent = HostAgentConfiguration(hostName: "h1", poolSize: 0)
        try await withRunningNode(dir, hostAgent: agent) { node in
            try await create(node, "hello", image: "builtin:hello")
            #expect(
                try await waitForRows(
                    node, "SELECT actual_state, reason FROM vms", #"[["stopped","the guest halted"]]"#)
                    == #"[["stopped","the guest halted"]]"#)
            #expect(
                String(decoding: try await node.console(of: "hello"), as: UTF8.self) == "hello from builtin:hello\n")
            try await create(node, "boom", image: "builtin:crash")
            let crashed = try await waitForRows(
                node, "SELECT actual_state, reason LIKE 'triple fault%' FROM vms WHERE name = 'boom'",
                #"[["crashed",1]]"#)
            #expect(crashed == #"[["crashed",1]]"#)
            // Make room (this machine may have two CPUs), then start another VM.
            _ = try await node.submit(.deleteVM(name: "hello"))
            _ = try await node.submit(.deleteVM(name: "boom"))
            try await create(node, "after", image: "builtin:hello")
            #expect(
                try await waitForRows(node, "SELECT actual_state FROM vms WHERE name = 'after'", #"[["stopped"]]"#)
                    == #"[["stopped"]]"#)
            #expect(try await rows(node, "SELECT path FROM vm_starts WHERE vm = 'after'") == #"[["cold"]]"#)
            // The host's microVMs in /metrics: what booted (by path) and how each ended.
            let metrics = node.metrics.render(node: node)
            #expect(metric(metrics, #"dwcp_vm_exits_total{how="halted"}"#) == 2, "\(metrics)")
            #expect(metric(metrics, #"dwcp_vm_exits_total{how="crashed"}"#) == 1)
            #expect((metric(metrics, #"dwcp_vm_starts_total{path="cold"}"#) ?? 0) >= 2)
        }
    }

    @Test("after the node restarts, a VM that was running is started again")
    func restartReconciles() async throws {
        let dir = TemporaryDirectory()
        let agent = HostAgentConfiguration(hostName: "h1", poolSize: 0)
        try await withRunningNode(dir, hostAgent: agent) { node in
            try await create(node, "c", image: "builtin:counter", labels: ["guest.interval_ms": "10"])
            #expect(try await waitForRows(node, "SELECT actual_state FROM vms", #"[["running"]]"#) == #"[["running"]]"#)
        }
        try await withRunningNode(dir, hostAgent: agent) { node in
            let restarted = try await waitForRows(
                node,
                "SELECT count(*) FROM vm_events WHERE vm = 'c' AND to_state = 'starting' AND reason LIKE 'restarted:%'",
                "[[1]]")
            #expect(restarted == "[[1]]")
            #expect(try await waitForRows(node, "SELECT actual_state FROM vms", #"[["running"]]"#) == #"[["running"]]"#)
            #expect(try await rows(node, "SELECT count(*) FROM vm_starts") == "[[2]]")
        }
    }
}

/// Polls `condition` until it holds (or `timeout`, by default ``expectedStateTimeout``, passes);
/// returns whether it held.
func waitUntil(timeout: Duration = expectedStateTimeout, _ condition: () -> Bool) async throws -> Bool {
    try await waitForValue(within: timeout) { condition() ? true : nil } ?? false
}
