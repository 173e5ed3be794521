import Store

/// `dwcp cluster verify`: every member hashes its views at one log index, and the CLI compares.
///
/// The leader proposes a no-op entry that carries ``LogEntry/viewsDigestMarker``; each member that
/// applies it hashes its views as they are at that index (``ViewsDigests``). SQLite's integrity
/// check, run as a node starts, finds damage that breaks the file's structure; a changed value
/// that breaks nothing is found only this way, by a member whose digest differs from the others'.
extension Node {
    /// Proposes a digest marker (on the leader); returns its index once committed.
    public func proposeViewsDigest() async throws -> UInt64 {
        try await consensus.proposeNoop(payload: LogEntry.viewsDigestMarker)
    }

    /// This member's digest of its views at the marker at `index`, waiting up to `timeout` for it
    /// to apply the marker and hash.
    public func viewsDigest(at index: UInt64, timeout: Duration) async throws -> [TableDigest] {
        let deadline = ContinuousClock.now + timeout
        let id = configuration.nodeID
        guard try await waitUntilApplied(index, timeout: timeout) != nil else {
            throw NodeError(
                .unavailable,
                "\(id) has not applied log index \(index) within \(timeout) (it has applied \(applied.value))")
        }
        guard let outcome = digests.outcome(at: index) else {
            throw NodeError(
                .notFound,
                "\(id) holds no digest of its views at log index \(index): no verify marker is there, or \(id) took it in a snapshot, applied it as it started, or has forgotten it (it keeps the last \(ViewsDigests.kept))"
            )
        }
        if outcome == .hashing {
            _ = try await digests.settled.wait(until: index, deadline: deadline)
        }
        switch digests.outcome(at: index) {
        case .done(let tables)?: return tables
        case .failed(let reason)?:
            throw NodeError(.internal, "\(id) could not hash its views at log index \(index): \(reason)")
        case .hashing?:
            throw NodeError(.unavailable, "\(id) is still hashing its views at log index \(index) after \(timeout)")
        case nil:
            throw NodeError(.notFound, "\(id) has forgotten its digest at log index \(index)")
        }
    }

    /// The apply loop applied the marker at `index` just now: opens the snapshot the digest is
    /// taken from before anything later applies.
    func beginViewsDigest(at index: UInt64) {
        do {
            digests.begin(index, snapshot: try views.openSnapshot())
        } catch {
            logger.warning("could not open a snapshot of the views to hash at log index \(index): \(error)")
            digests.fail(index, "\(error)")
        }
    }
}
