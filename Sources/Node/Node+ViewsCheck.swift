extension Node {
    /// Checks the views once as the node starts (``ViewStore/checkIntegrity()``), beside the
    /// other loops: damage SQLite can find stops the node, and the next start rebuilds the views
    /// from the log. Views rebuilt by this start are not checked.
    func checkViews() async throws {
        guard views.rebuildReason == nil else { return }
        let started = ContinuousClock.now
        try await views.checkIntegrity()
        logger.debug("views.sqlite passed SQLite's integrity check in \(started.duration(to: .now))")
    }
}
