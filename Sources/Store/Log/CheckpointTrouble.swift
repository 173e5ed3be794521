/// The log's failed checkpoints, told without flooding the log: the writer tries again every
/// checkpoint interval (50 ms), so a full disk fails twenty times a second. The first failure is
/// told at once, then at most one line per 10 s (``LogThrottle``), and once when a checkpoint
/// succeeds again. (Until this, a failed checkpoint only counted in
/// `dwcp_log_checkpoint_failures_total`: a member whose disk was full went on acknowledging writes
/// for 10–15 s with nothing in its log.)
struct CheckpointTrouble: Sendable {
    private var throttle = LogThrottle()
    /// When the first of the failures since the last success came, and how many there were.
    private var since: ContinuousClock.Instant?
    private var failures = 0

    /// Notes a failure at `now`; returns how to count it in a line when one is due, else nil.
    mutating func failed(at now: ContinuousClock.Instant) -> String? {
        failures += 1
        let since = self.since ?? now
        self.since = since
        guard throttle.admit(at: now) != nil else { return nil }
        return failures == 1 ? "it failed" : "\(failures) failures over \((now - since).inTenthsOfSeconds)"
    }

    /// Notes a success at `now`; returns the line to tell when failures came before it.
    mutating func succeeded(at now: ContinuousClock.Instant) -> String? {
        guard let since else { return nil }
        defer { self = CheckpointTrouble() }
        return
            "the log's journal went into LMDB again, after \(failures) failed checkpoints over \((now - since).inTenthsOfSeconds)"
    }
}
