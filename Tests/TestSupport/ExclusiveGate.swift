/// Lets one test at a time into a section, across suites that otherwise run at once: for tests
/// that hold something the whole process shares (the microVMs' release queue, suspended).
public actor ExclusiveGate {
    /// For tests that suspend `MicroVM.releaseQueue`: another such test waiting on the queue
    /// meanwhile would block a thread of Swift's shared pool for as long.
    public static let releaseQueue = ExclusiveGate()

    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Returns once no other caller is inside; call ``leave()`` on every way out.
    public func enter() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Lets the next caller in.
    public func leave() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}
