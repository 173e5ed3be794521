/// Tries `attempt` every `interval` until it gives a value or `timeout` passes; the value, or nil.
///
/// The last try comes after the deadline: on a loaded machine a test's task can wait in the
/// cooperative pool's queue longer than its whole timeout (a CI run saw trivial tests finish 41 s
/// after they started), and a loop that gave up on waking past its deadline would report as never
/// true a condition that held all along.
public func waitForValue<T>(
    within timeout: Duration, every interval: Duration = .milliseconds(20), _ attempt: () async throws -> T?
) async throws -> T? {
    let deadline = ContinuousClock.now + timeout
    while true {
        let wasPastDeadline = ContinuousClock.now >= deadline
        if let value = try await attempt() { return value }
        if wasPastDeadline { return nil }
        try await Task.sleep(for: interval)
    }
}

/// Waits (polling every 10 ms) until `condition` holds or `timeout` passes; whether it holds.
public func eventually(_ timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws -> Bool {
    try await waitForValue(within: timeout, every: .milliseconds(10)) { condition() ? true : nil } ?? false
}
