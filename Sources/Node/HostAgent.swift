import Foundation
import GRDB
import Hypervisor
import Logging
import NIOPosix
import Scheduler
import Store
import Synchronization

/// Runs the VMs placed on this machine. It reacts only to committed records: after an applied
/// index that changed a VM placed on its host (`hosts.vms_changed_index`), it reads the VMs
/// placed there, asks ``HostAgentPlan`` what to do, and starts
/// (from the pre-warmed pool when the shape matches, else cold), stops or tears down microVMs.
/// Every actual-state change is proposed as a `vm.state_reported` record; the `running` report of a
/// start carries the path it took and how long it took. When the node stops, its VMs end with it;
/// on the next start the plan restarts those the views still show running.
struct HostAgent: Sendable {
    let configuration: HostAgentConfiguration
    let kvm: KVMSystem
    let vmsPath: String
    let logger: Logger

    /// Why a VM's microVM was ended by the agent (an exit without one is the guest's own doing).
    enum StopCause: Sendable {
        case requested, tornDown, shutdown
    }

    /// The microVMs running here, by VM name, and the memory of those that ended and have not
    /// given it back yet.
    final class LocalVMs: Sendable {
        struct Entry {
            let vm: MicroVM
            /// The `vm.created` index of the VM it was started for.
            let createdIndex: Int64
            var stopCause: StopCause?
        }
        private struct State {
            var running: [String: Entry] = [:]
            /// Guest memory of ended microVMs not yet unmapped, by the number ``end(_:memoryBytes:)`` gave.
            var releasing: [UInt64: Int64] = [:]
            var nextRelease: UInt64 = 0
        }
        private let state = Mutex(State())
        /// How many times a microVM here has ended or given its memory back: a pass also runs
        /// then, since a VM torn down reports nothing, one placed here again waits for it, and a
        /// start put off for memory waits for the release.
        let ended = IndexWatermark(0)

        /// Adds a microVM that runs here now.
        func add(_ name: String, _ entry: Entry) { state.withLock { $0.running[name] = entry } }

        /// Sets why the agent ends `name`'s microVM and returns it (nil when none runs here).
        func markStopping(_ name: String, cause: StopCause) -> MicroVM? {
            state.withLock { state in
                state.running[name]?.stopCause = cause
                return state.running[name]?.vm
            }
        }

        /// Every microVM running here, each marked as ended by the node's shutdown.
        func markAllShuttingDown() -> [MicroVM] {
            state.withLock { state in
                for name in state.running.keys { state.running[name]?.stopCause = .shutdown }
                return state.running.values.map(\.vm)
            }
        }

        /// The guest memory of the microVMs here: running, or ended and not given back yet.
        var heldMemoryBytes: Int64 {
            state.withLock { state in
                state.running.values.reduce(0) { $0 + Int64($1.vm.shape.memoryBytes) }
                    + state.releasing.values.reduce(0, +)
            }
        }

        /// The microVMs running here and how many ends and releases there were, read together: one
        /// after this moves `ended` past the count returned.
        func snapshot() -> (running: [String: Int64], ended: UInt64) {
            state.withLock { ($0.running.mapValues(\.createdIndex), ended.value) }
        }

        /// `name`'s microVM has ended: it no longer runs here, but its `memoryBytes` count as held
        /// until ``released(_:)`` with the number returned. Returns that and why the agent ended
        /// it, if it did.
        func end(_ name: String, memoryBytes: Int64) -> (cause: StopCause?, release: UInt64) {
            state.withLock { state in
                let cause = state.running.removeValue(forKey: name)?.stopCause
                state.nextRelease += 1
                state.releasing[state.nextRelease] = memoryBytes
                // Under the lock, so two microVMs that end at once count as two.
                ended.advance(to: ended.value + 1)
                return (cause, state.nextRelease)
            }
        }

        /// The microVM that ``end(_:memoryBytes:)`` numbered `release` has given its memory back.
        func released(_ release: UInt64) {
            state.withLock { state in
                state.releasing[release] = nil
                ended.advance(to: ended.value + 1)
            }
        }
    }

    /// Runs the agent until cancelled; without a usable /dev/kvm it says so once and returns.
    static func run(node: Node, configuration: HostAgentConfiguration) async throws {
        let kvm: KVMSystem
        var opened = KVMSystem.shared
        if configuration.kvmDevicePath != KVMSystem.devicePath {
            do {
                opened = .success(try KVMSystem(path: configuration.kvmDevicePath))
            } catch {
                opened = .failure(error as? HypervisorError ?? HypervisorError(.unavailable, "\(error)"))
            }
        }
        switch opened {
        case .success(let system): kvm = system
        case .failure(let error):
            node.logger.notice(
                "no host agent on this node: \(error.message); VMs are not run here, and this machine is not registered as a host"
            )
            return
        }
        let agent = HostAgent(
            configuration: configuration, kvm: kvm, vmsPath: node.configuration.vmsPath, logger: node.logger)
        // Not before the views' values are known to be ones the applier writes (as the scheduler).
        _ = try await node.snapshots.viewsChecked.wait(until: 1)
        try await agent.run(node: node)
    }

    func run(node: Node) async throws {
        // A pool of VMs this host could never be given costs their memory for nothing (a 256GiB
        // shape on a 24GiB machine took 1.3GB at once and delayed the host's registration).
        let offered = Self.schedulableMemory(physical: ProcessInfo.processInfo.physicalMemory)
        let poolFits = configuration.poolMemoryBytes <= offered
        if configuration.poolSize > 0, !poolFits {
            logger.warning(
                "host agent: no VM pool: its VMs of \(ByteSize.exactText(configuration.poolMemoryBytes)) (--vm-pool-memory) could never be placed on this host, which offers \(ByteSize.exactText(offered)); starts take the cold path"
            )
        }
        let pool: MicroVMPool? =
            configuration.poolSize > 0 && poolFits
            ? MicroVMPool(
                kvm: kvm,
                shape: MicroVMShape(
                    memoryBytes: Int(configuration.poolMemoryBytes), vcpus: configuration.poolVCPUs),
                size: configuration.poolSize) : nil
        let local = LocalVMs()
        defer {
            // The node is stopping (or the agent could not announce the host): its VMs end, and
            // so do the pool's.
            for vm in local.markAllShuttingDown() { vm.stop() }
            pool?.drain()
        }
        // The pool is warm before the host is announced, so the first start placed here can take it.
        if let pool, await !Self.fill(pool, logger: logger) { throw CancellationError() }
        try await register(node: node)
        try await Self.catchUp(node, logger: logger)
        let (refills, refillRequest) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try await withThrowingDiscardingTaskGroup { group in
            if let pool {
                refillRequest.yield()
                group.addTask {
                    for await _ in refills {
                        guard await Self.fill(pool, logger: logger) else { return }
                    }
                }
            }
            var plan = HostAgentPlan()
            var seen: UInt64 = 0
            // VMs with files here (console, snapshots): removed once the VM is no longer placed here.
            var withFiles = Set((try? FileManager.default.contentsOfDirectory(atPath: vmsPath)) ?? [])
            // What the last pass acted on: a pass runs again only when a VM placed here changed
            // (`hosts.vms_changed_index`) or one of the microVMs here ended, not after every commit;
            // and while a start waits for memory, when an ended one gave its memory back.
            var actedOn: (vmsChanged: Int64?, running: [String: Int64])?
            // VMs whose start waits for memory that ended microVMs hold (`HostAgentPlan.Action.waitForMemory`;
            // logged once each).
            var waitingForMemory = Set<String>()
            while true {
                let (applied, appliedAt) = node.applied.valueAndTime
                seen = applied
                // Read before the VMs themselves: a change that lands between the two reads moves
                // the index again, so the next pass sees it.
                let (vmsChanged, hostMemory) = try Self.readHost(node, host: configuration.hostName)
                // Read once, with the count of ends: a microVM that ends from here on wakes the
                // wait below, and the next pass sees it gone.
                let (running, endedSeen) = local.snapshot()
                // Removed from the region, this member's views stop where they are: the region no
                // longer hears this host, and may place its VMs elsewhere (an evacuation), where
                // they would run beside these. They end here. Added again, the member catches up
                // and this agent starts what the views then place here, as after a restart.
                if node.raft?.wasRemoved == true {
                    if !running.isEmpty {
                        logger.warning(
                            "this member was removed from the region: ending the VMs it runs (\(running.keys.sorted().joined(separator: ", "))), which the region may run elsewhere once the host is evacuated"
                        )
                        for name in running.keys { local.markStopping(name, cause: .tornDown)?.stop() }
                    }
                    // (After it was added back, its VMs' restarts said the host agent had stopped.)
                    plan = HostAgentPlan(endedWhen: "this member was removed from its region")
                    actedOn = nil
                    seen = try await Self.waitForChange(node: node, after: seen, endedAfter: endedSeen, local: local)
                    continue
                }
                if let actedOn, actedOn.vmsChanged == vmsChanged, actedOn.running == running, waitingForMemory.isEmpty {
                    seen = try await Self.waitForChange(node: node, after: seen, endedAfter: endedSeen, local: local)
                    continue
                }
                // A synchronous lookup on purpose: one short indexed query on the views' lookup
                // connections (they never wait for one another or for the writer), without the hop
                // to GRDB's reader queue, which under load costs a millisecond on this path that VM
                // start latency is measured on. (A synchronous read of GRDB's pool here could wait
                // for a reader that an async read holds until its task runs again.)
                let hosted = try Self.readHostedVMs(node, host: configuration.hostName)
                let hostedNames = Set(hosted.map(\.name))
                for name in withFiles.subtracting(hostedNames).subtracting(running.keys) {
                    try? FileManager.default.removeItem(atPath: directory(of: name))
                    withFiles.remove(name)
                }
                withFiles.formUnion(hostedNames)
                waitingForMemory.formIntersection(hostedNames)
                defer { node.metrics.vmsWaitingForMemory.record(waitingForMemory.count) }
                let memory = hostMemory.map { HostAgentPlan.Memory(offered: $0, held: local.heldMemoryBytes) }
                /// The `vm.created` index of the hosted VM `name`, which a report names.
                func createdIndex(of name: String) -> UInt64? {
                    hosted.first { $0.name == name }.map { UInt64($0.createdIndex) }
                }
                var reportLost = false
                for action in plan.actions(hosted: hosted, running: running, memory: memory) {
                    switch action {
                    case .waitForMemory(let vm):
                        if waitingForMemory.insert(vm.name).inserted, let memory {
                            let reason =
                                "waits for memory: the microVMs here still hold \(memory.held) of the host's \(memory.offered) bytes, some of it for VMs that ended"
                            logger.notice("VM \(vm.name) (\(vm.memoryBytes) bytes) \(reason)")
                            // Said in the views too, where the VM read "waiting for its host agent"
                            // meanwhile. Reported here, before this loop goes on, so that the report
                            // of its start, later, commits after it.
                            await report(
                                node,
                                VMStateReported(
                                    vm: vm.name, host: configuration.hostName, state: "scheduled", reason: reason,
                                    createdIndex: UInt64(vm.createdIndex)))
                        }
                    case .start(let vm, let reason):
                        waitingForMemory.remove(vm.name)
                        start(
                            vm, reason: reason, appliedAt: appliedAt, pool: pool, local: local, node: node,
                            group: &group)
                        if pool != nil { refillRequest.yield() }
                    case .stop(let name):
                        local.markStopping(name, cause: .requested)?.stop()
                    case .reportStopped(let name, let reason):
                        await report(
                            node,
                            VMStateReported(
                                vm: name, host: configuration.hostName, state: "stopped", reason: reason,
                                createdIndex: createdIndex(of: name)))
                    case .reportRunning(let name, let reason):
                        logger.notice("VM \(name) \(reason)")
                        let reported = await report(
                            node,
                            VMStateReported(
                                vm: name, host: configuration.hostName, state: "running", reason: reason,
                                createdIndex: createdIndex(of: name)))
                        // Not committed (the region had no leader for longer than the tries): the
                        // next pass reports it again, rather than leave the views `scheduled`.
                        if !reported {
                            plan.reportLost(name)
                            reportLost = true
                        }
                    case .tearDown(let name):
                        if let vm = local.markStopping(name, cause: .tornDown) {
                            logger.notice(
                                "VM \(name) is no longer placed on this host as this microVM runs it (deleted, evacuated, or created again): ending it"
                            )
                            vm.stop()
                        }
                        try? FileManager.default.removeItem(atPath: directory(of: name))
                        withFiles.remove(name)
                    }
                }
                // (A lost report plans again at the next applied index, not only once a VM changes.)
                actedOn = reportLost ? nil : (vmsChanged, running)
                seen = try await Self.waitForChange(node: node, after: seen, endedAfter: endedSeen, local: local)
            }
        }
    }

    /// Waits until the node applies an index after `seen` or more than `ended` microVMs here have
    /// ended, whichever comes first; returns the applied index then.
    static func waitForChange(node: Node, after seen: UInt64, endedAfter ended: UInt64, local: LocalVMs)
        async throws -> UInt64
    {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.waitUntilApplied(seen + 1) }
            group.addTask { _ = try await local.ended.wait(until: ended + 1) }
            // A member may learn of its removal from a leader's word, with no entry applied: looked
            // at every second (while it is a member).
            if let raft = node.raft, !raft.wasRemoved {
                group.addTask {
                    let loop = MultiThreadedEventLoopGroup.singleton.any()
                    while !raft.wasRemoved { try await loop.sleep(for: .seconds(1)) }
                }
            }
            _ = try await group.next()
            group.cancelAll()
        }
        return node.applied.value
    }

    private func start(
        _ hosted: HostedVM, reason: String, appliedAt: ContinuousClock.Instant, pool: MicroVMPool?, local: LocalVMs,
        node: Node, group: inout ThrowingDiscardingTaskGroup<any Error>
    ) {
        let shape = MicroVMShape(memoryBytes: Int(hosted.memoryBytes), vcpus: hosted.cpus)
        let host = configuration.hostName
        // A microVM that never boots still holds its parked threads, memory and KVM VM: stopped
        // below when the start fails.
        var created: MicroVM?
        do {
            let image = try GuestImage.named(hosted.image)
            var path = "cold"
            let vm: MicroVM
            if let pool, pool.shape == shape, let warm = pool.take() {
                vm = warm
                path = "pool"
            } else {
                vm = try MicroVM(kvm: kvm, shape: shape)
            }
            created = vm
            let console = try SerialConsole(
                path: directory(of: hosted.name) + "/console.log", limitBytes: configuration.consoleLimitBytes)
            try vm.boot(image, commandLine: hosted.guestCommandLine, console: console)
            local.add(hosted.name, LocalVMs.Entry(vm: vm, createdIndex: hosted.createdIndex))
            let startingReason = reason.isEmpty ? "starting on \(host) (\(path) start)" : reason
            group.addTask {
                await watch(
                    hosted.name, createdIndex: UInt64(hosted.createdIndex), vm: vm, path: path,
                    startingReason: startingReason, appliedAt: appliedAt, local: local, node: node)
            }
        } catch {
            created?.stop()
            logger.error("cannot start VM \(hosted.name): \(error)")
            group.addTask {
                await report(
                    node,
                    VMStateReported(
                        vm: hosted.name, host: host, state: "crashed", reason: "cannot start: \(error)",
                        createdIndex: UInt64(hosted.createdIndex)))
            }
        }
    }

    /// Reports a started VM's life as records: starting, running (with the start's measurements),
    /// then how it ended.
    private func watch(
        _ name: String, createdIndex: UInt64, vm: MicroVM, path: String, startingReason: String,
        appliedAt: ContinuousClock.Instant, local: LocalVMs, node: Node
    ) async {
        let host = configuration.hostName
        // Every report names the VM it is about, which may have been deleted and created again
        // under its name by the time the report commits.
        func report(_ node: Node, _ state: VMStateReported) async {
            var state = state
            state.createdIndex = createdIndex
            await self.report(node, state)
        }
        await report(node, VMStateReported(vm: name, host: host, state: "starting", reason: startingReason))
        for await event in vm.events {
            switch event {
            case .booted(let bootedAt):
                let firstEntry = vm.timing.firstEntry ?? bootedAt
                let measurement = VMStartMeasurement(
                    path: path, firstEntryMicroseconds: Self.microseconds(firstEntry - appliedAt),
                    bootMicroseconds: Self.microseconds(bootedAt - appliedAt))
                node.metrics.countVMStart(path: path)
                await report(
                    node,
                    VMStateReported(
                        vm: name, host: host, state: "running", reason: "booted (\(path) start)", start: measurement))
            case .exited(let exit):
                // It no longer runs here (a start under its name may follow at once), but until its
                // memory is given back, alongside the report, a start counts that memory held.
                let (cause, releaseNumber) = local.end(name, memoryBytes: Int64(vm.shape.memoryBytes))
                async let release: Void = vm.release()
                switch (cause, exit) {
                case (.tornDown, _):
                    // Deleted, placed elsewhere (an evacuation), or its member left the region.
                    node.metrics.countVMExit("torn_down")
                case (.shutdown, _):
                    node.metrics.countVMExit("shutdown")
                case (.requested, _):
                    node.metrics.countVMExit("requested")
                    await report(
                        node, VMStateReported(vm: name, host: host, state: "stopped", reason: "stopped by request"))
                case (_, .halted):
                    node.metrics.countVMExit("halted")
                    await report(
                        node, VMStateReported(vm: name, host: host, state: "stopped", reason: "the guest halted"))
                case (_, .stopped):
                    node.metrics.countVMExit("stopped")
                    await report(node, VMStateReported(vm: name, host: host, state: "stopped", reason: "stopped"))
                case (_, .crashed(let reason)):
                    node.metrics.countVMExit("crashed")
                    logger.warning("VM \(name) crashed: \(reason)")
                    await report(node, VMStateReported(vm: name, host: host, state: "crashed", reason: reason))
                }
                await release
                local.released(releaseNumber)
            }
        }
    }

    /// Proposes a VM's state, trying again (5 tries, 3 s of pauses between them) while the region cannot take
    /// it, as through a change of leader: a report lost for good left the views wrong until the VM
    /// changed again. (Applied twice, a report sets the same state again: no second event row, and
    /// no second `vm_starts` row, as its measurement is the VM's latest already.)
    /// Returns whether the report committed.
    @discardableResult
    private func report(_ node: Node, _ state: VMStateReported) async -> Bool {
        var pause: Duration = .milliseconds(200)
        for attempt in 1...5 {
            do {
                _ = try await node.consensus.propose([Record(at: Node.now(), .vmStateReported(state)).encoded()])
                return true
            } catch let error as NodeError where error.code == .unavailable && attempt < 5 {
                logger.info("cannot report VM \(state.vm) \(state.state) yet (\(error.message)); trying again")
                do { try await Task.sleep(for: pause) } catch { return false }
                pause *= 2
            } catch {
                logger.warning("cannot report VM \(state.vm) \(state.state): \(error)")
                return false
            }
        }
        return false
    }

    /// Registers this machine as a host with its real CPU count and memory, unless one of this name exists.
    private func register(node: Node) async throws {
        let name = configuration.hostName
        var labels = configuration.labels
        labels["hypervisor"] = "kvm"
        let host = HostAdded(
            name: name, region: node.configuration.region, cpus: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: Self.schedulableMemory(physical: ProcessInfo.processInfo.physicalMemory), labels: labels)
        let index = try await node.registerSelf(
            host, requestID: Self.requestIDPrefix(nodeID: node.configuration.nodeID) + name)
        if let index {
            logger.notice(
                "host agent: registered this machine as host \(name) (\(formatCPUs(host.cpus)), \(host.memoryBytes) bytes, KVM) at index \(index)"
            )
        }
        // The same node's agent under another --host-name before: its VMs have no agent now.
        for former in try await node.formerAgentHosts(besides: name) where former.vms > 0 {
            logger.warning(
                "host agent: this node ran host \(former.name) before, which still has \(former.vms) VM\(former.vms == 1 ? "" : "s") placed on it that no agent runs now (this one runs \(name)): start the node with --host-name \(former.name) to run them again, or delete them and remove the host (dwcp host remove \(former.name))"
            )
        }
    }

    /// In a region, waits until this member's views hold what the region had committed when the
    /// agent started (a linearizable read's barrier, asked again every second until a leader
    /// answers), before the agent's first pass. Views a member kept across a restart may still
    /// place VMs here that were evacuated or deleted while it was down: acting on them, the agent
    /// would start those VMs again beside their new copies. A single node's views are its log.
    static func catchUp(_ node: Node, logger: Logger) async throws {
        guard node.raft != nil else { return }
        var told = false
        while true {
            do {
                try await node.waitForViews(.linearizable)
                if told { logger.notice("host agent: the views are current; acting on them") }
                return
            } catch let error as NodeError {
                if !told {
                    logger.notice(
                        "host agent: waits for its views to catch up with the region before it starts or stops anything (\(error.message))"
                    )
                    told = true
                }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The request ids this node's agent registers its machine under start with this (it ends in
    /// '-': ``Node/formerAgentHosts(besides:)`` reads the ids after it as a range).
    static func requestIDPrefix(nodeID: String) -> String { "\(agentStem)\(nodeID)-" }

    /// The request id a node registers its machine under when told to by its configuration
    /// (``NodeConfiguration/registerHost``) rather than by its host agent.
    static func configuredRegistrationID(nodeID: String, host: String) -> String {
        "\(configuredStem)\(nodeID)-\(host)"
    }

    /// How the two kinds of a node's own registration ids begin.
    private static let agentStem = "host-agent-"
    private static let configuredStem = "register-"

    /// Whether `requestID` is one a node registered its own machine under (its host agent's, or
    /// its configuration's): a host added so has a node that runs its VMs.
    static func isSelfRegistration(_ requestID: String) -> Bool {
        requestID.hasPrefix(agentStem) || requestID.hasPrefix(configuredStem)
    }

    /// The memory this machine offers its VMs: all of it but a reserve for the node process itself
    /// and the system (an eighth, at least 1 GiB), as kubelet's system-reserved or OpenStack's
    /// reserved host memory keep. The guests' memory is mapped inside the node's process: VMs
    /// that touched all of the machine's memory would have the kernel kill the node, and with it
    /// every VM on the host, again after each restart.
    static func schedulableMemory(physical: UInt64) -> Int64 {
        let physical = Int64(clamping: physical)
        let reserve = max(Int64(1) << 30, physical / 8)
        return max(physical - reserve, Int64(1) << 20)
    }

    func directory(of vm: String) -> String { vmsPath + "/" + vm }

    /// Fills `pool` up to its size on NIO's thread pool (it maps and touches every VM's memory:
    /// not work for an event loop). A failure is logged and the pool stays short until the next
    /// fill. False when the task was cancelled.
    static func fill(_ pool: MicroVMPool, logger: Logger) async -> Bool {
        do {
            try await NIOThreadPool.singleton.runIfActive { try pool.refill() }
        } catch is CancellationError {
            return false
        } catch {
            logger.error("cannot fill the VM pool: \(error)")
        }
        return true
    }

    /// The last log index that changed a VM placed on `host` and the memory the host offers (both
    /// nil while the host is unknown), read synchronously like the VMs themselves: one primary-key
    /// lookup, however many VMs there are.
    static func readHost(_ node: Node, host: String) throws -> (vmsChanged: Int64?, memoryBytes: Int64?) {
        try node.views.read { db in
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT vms_changed_index, memory_bytes FROM hosts WHERE name = ?"),
                arguments: [host])
            return (row?[0], row?[1])
        }
    }

    /// The VMs placed on `host`, read synchronously (see the call site for why).
    static func readHostedVMs(_ node: Node, host: String) throws -> [HostedVM] {
        try node.views.read { db in try hostedVMs(db, host: host) }
    }

    static func hostedVMs(_ db: Database, host: String) throws -> [HostedVM] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT name, cpus, memory_bytes, image, desired_state, actual_state, desired_index, reported_index, labels,
                       created_index
                FROM vms WHERE host = ? ORDER BY name
                """, arguments: [host]
        ).map { row in
            HostedVM(
                name: row["name"], cpus: row["cpus"], memoryBytes: row["memory_bytes"], image: row["image"],
                desiredState: row["desired_state"], actualState: row["actual_state"],
                desiredIndex: row["desired_index"],
                reportedIndex: row["reported_index"], labels: PlacementInputs.labels(row["labels"]),
                createdIndex: row["created_index"])
        }
    }

    static func microseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
