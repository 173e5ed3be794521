/// A VM placed on this agent's host, as the views show it.
public struct HostedVM: Sendable, Equatable {
    public var name: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var image: String
    public var desiredState: String
    public var actualState: String
    /// The index of the record that last set the desired state (create, start, stop).
    public var desiredIndex: Int64
    /// The index of the last state this host reported for it.
    public var reportedIndex: Int64
    public var labels: [String: String]
    /// The index of its `vm.created` record: which VM of this name it is (a name deleted and
    /// created again is another VM).
    public var createdIndex: Int64

    public init(
        name: String, cpus: Int, memoryBytes: Int64, image: String, desiredState: String, actualState: String,
        desiredIndex: Int64, reportedIndex: Int64, labels: [String: String] = [:], createdIndex: Int64 = 0
    ) {
        self.name = name
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.image = image
        self.desiredState = desiredState
        self.actualState = actualState
        self.desiredIndex = desiredIndex
        self.reportedIndex = reportedIndex
        self.labels = labels
        self.createdIndex = createdIndex
    }

    /// The prefix of the labels that become the guest's command line.
    public static let guestLabelPrefix = "guest."

    /// The guest's command line: the VM's `guest.KEY=VALUE` labels as `KEY=VALUE`, sorted.
    public var guestCommandLine: String { Self.guestCommandLine(labels) }

    /// The command line `labels` give a guest: their `guest.KEY=VALUE` labels as `KEY=VALUE`, sorted.
    public static func guestCommandLine(_ labels: [String: String]) -> String {
        labels.filter { $0.key.hasPrefix(guestLabelPrefix) }.sorted { $0.key < $1.key }
            .map { "\($0.key.dropFirst(guestLabelPrefix.count))=\($0.value)" }.joined(separator: " ")
    }
}

/// What the host agent decides to do, from what the views say and what runs here. Pure: the
/// ``HostAgent`` shell performs the actions.
public struct HostAgentPlan: Sendable {
    /// When the microVMs this plan finds gone ended, for the reason a VM shown running is started
    /// again with: the host agent stopped (the node restarted), or this member was removed from
    /// its region and has been added back (the agent ended its VMs then).
    public var endedWhen: String

    public init(endedWhen: String = "the host agent stopped") {
        self.endedWhen = endedWhen
    }

    public enum Action: Sendable, Equatable {
        /// Start the VM; `reason` says why when it is not a plain first start.
        case start(HostedVM, reason: String)
        /// Stop the VM running here (its desired state is `stopped`).
        case stop(String)
        /// Report a VM that is not running here as stopped (it was running before the agent restarted).
        case reportStopped(String, reason: String)
        /// Report a VM that runs here as running: the views took it off this host and placed it
        /// here again (an evacuation this agent did not see, cut off) while its microVM ran on.
        case reportRunning(String, reason: String)
        /// The VM is no longer placed here (deleted or moved): end it and remove its files.
        case tearDown(String)
        /// Its start would need memory that ended microVMs here still hold: it comes again in a
        /// later pass, once enough is given back.
        case waitForMemory(HostedVM)
    }

    /// The host's memory as the agent sees it: what the host offers its VMs (`hosts.memory_bytes`)
    /// and what the microVMs here hold now, running or ended and not yet given back. The views
    /// count a deleted VM's memory free once the delete applies, so the scheduler may place a new
    /// VM on it while the old microVM still has it mapped.
    public struct Memory: Sendable, Equatable {
        public var offered: Int64
        public var held: Int64

        public init(offered: Int64, held: Int64) {
            self.offered = offered
            self.held = held
        }
    }

    /// For each VM, the desired index the agent already acted on: a desired state is acted on once,
    /// so a guest that halts is not started again until someone asks for it again.
    public private(set) var handled: [String: Int64] = [:]

    /// The VMs running here that the views, in an earlier pass, showed starting or running: one
    /// of them the views show `scheduled` again was placed here anew, not started by this agent.
    private var seenRunning: Set<String> = []

    /// A ``Action/reportRunning(_:reason:)`` did not commit: the next pass that finds the VM
    /// running here and `scheduled` in the views gives it again.
    public mutating func reportLost(_ name: String) {
        seenRunning.insert(name)
    }

    /// The actions that bring this host in line with `hosted`; `running` are the VMs alive here,
    /// each with the `vm.created` index of the VM it was started for. One started for a VM of that
    /// name deleted since (the name created again) is torn down, and the new VM is then started as
    /// any other. With `memory`, a start that does not fit what is left (counting the starts
    /// before it in the pass) waits instead, and is not taken as acted on.
    public mutating func actions(hosted: [HostedVM], running: [String: Int64], memory: Memory? = nil) -> [Action] {
        var actions: [Action] = []
        var free = memory.map { $0.offered - $0.held }
        let names = Set(hosted.map(\.name))
        for name in Set(running.keys).subtracting(names).sorted() { actions.append(.tearDown(name)) }
        for vm in hosted {
            if let startedFor = running[vm.name], startedFor != vm.createdIndex {
                actions.append(.tearDown(vm.name))
                handled[vm.name] = nil
                continue
            }
            let isRunning = running[vm.name] != nil
            let actedOn = handled[vm.name] == vm.desiredIndex
            // The views still show it running although it does not run here: the agent restarted.
            let lostRun = ["starting", "running"].contains(vm.actualState) && vm.reportedIndex > vm.desiredIndex
            // The same, after a start asked while it ran (met then), which moved its desired index
            // past its last report: this agent never acted on it, so it ran before the agent did.
            let ranBeforeThisAgent = ["starting", "running"].contains(vm.actualState) && handled[vm.name] == nil
            // This agent acted on an earlier desired state of it (a stop), and it is asked again:
            // a start that follows a stop, whatever order the stop's report committed in.
            let askedAgain = (handled[vm.name] ?? .max) < vm.desiredIndex
            if isRunning, ["starting", "running"].contains(vm.actualState) {
                seenRunning.insert(vm.name)
            } else if !isRunning {
                seenRunning.remove(vm.name)
            }
            switch vm.desiredState {
            case "running" where isRunning:
                // Evacuated while this agent was cut off, and placed here again before it heard:
                // the views wait for a start this agent will not make (it runs). (Its own start's
                // reports come after a pass that showed `scheduled`, so that one is not taken.)
                if vm.actualState == "scheduled", seenRunning.remove(vm.name) != nil {
                    actions.append(
                        .reportRunning(
                            vm.name,
                            reason:
                                "placed on this host again while its microVM here ran on (it was taken off this host while its host agent was cut off)"
                        ))
                }
                // A start asked while it runs is met: a guest that halts later is not started again for it.
                handled[vm.name] = vm.desiredIndex
            case "running" where !actedOn:
                let reason: String? =
                    if vm.actualState == "scheduled" || askedAgain {
                        ""
                    } else if lostRun || ranBeforeThisAgent {
                        "restarted: it was \(vm.actualState) when \(endedWhen)"
                    } else if vm.desiredIndex > vm.reportedIndex {
                        ""
                    } else {
                        nil
                    }
                if let reason {
                    if let left = free {
                        guard vm.memoryBytes <= left else {
                            actions.append(.waitForMemory(vm))
                            continue
                        }
                        free = left - vm.memoryBytes
                    }
                    actions.append(.start(vm, reason: reason))
                }
                handled[vm.name] = vm.desiredIndex
            case "stopped" where isRunning:
                actions.append(.stop(vm.name))
                handled[vm.name] = vm.desiredIndex
            case "stopped" where !actedOn && lostRun:
                actions.append(
                    .reportStopped(
                        vm.name, reason: "not running after the host agent restarted; its desired state is stopped"))
                handled[vm.name] = vm.desiredIndex
            case "stopped" where !actedOn && vm.actualState == "scheduled":
                // Created stopped, or stopped before it started: it would show `scheduled` for good.
                actions.append(.reportStopped(vm.name, reason: "its desired state is stopped"))
                handled[vm.name] = vm.desiredIndex
            case "stopped" where !actedOn && ["starting", "running"].contains(vm.actualState):
                // Stopped by request, but the report of its end never committed (a change of leader,
                // or the node went down before it did): the views would show it running for good.
                actions.append(.reportStopped(vm.name, reason: "not running here; its desired state is stopped"))
                handled[vm.name] = vm.desiredIndex
            default:
                break
            }
        }
        handled = handled.filter { names.contains($0.key) }
        seenRunning.formIntersection(names)
        return actions
    }
}
