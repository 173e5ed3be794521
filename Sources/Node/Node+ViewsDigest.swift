import Store

/// `dwcp cluster verify`: every member hashes its views at one log index, and the CLI compares.
///
/// The leader proposes a no-op entry that carries ``LogEntry/viewsDigestMarker``; each member that
/// applies it hashes its views as they are at that index (``ViewsDigests``). SQLite's integrity
/// check, run as a node starts, finds damage that breaks the file's structure; a changed value
/// that breaks nothing is found only this way, by a member whose digest differs from the others'.
extension Node {
    /// Proposes a digest marker (on the leader); returns its index once committed. Verifies asked
    /// while the last marker this member proposed is not yet hashed here share it
    /// (``ViewsDigests/claimProposal(applied:)``): each marker costs every member a read of its whole views.
    public func proposeViewsDigest() async throws -> UInt64 {
        guard consensus.isLeader else { return try await consensus.proposeNoop(payload: LogEntry.viewsDigestMarker) }
        switch try await digests.claimProposal(applied: { [applied] in applied.value }) {
        case .share(let index):
            return index
        case .propose:
            do {
                let index = try await consensus.proposeNoop(payload: LogEntry.viewsDigestMarker)
                digests.proposed(.success(index))
                return index
            } catch {
                digests.proposed(.failure(error))
                throw error
            }
        }
    }

    /// This member's digest of its views at the marker at `index`, waiting up to `timeout` in all
    /// for it to commit, apply and hash the marker.
    public func viewsDigest(at index: UInt64, timeout: Duration) async throws -> ViewsDigest {
        let deadline = ContinuousClock.now + timeout
        func left() -> Duration { max(.zero, ContinuousClock.now.duration(to: deadline)) }
        let id = configuration.nodeID
        // Committed first: asking the apply loop for an index not yet committed would keep a
        // follower from batching until it came (``waitUntilApplied(_:)``).
        guard try await consensus.committed.wait(until: index, timeout: left()) != nil else {
            throw NodeError(
                .unavailable,
                "\(id) has not seen log index \(index) commit within \(timeout) (its commit index is \(consensus.committed.value))"
            )
        }
        guard try await waitUntilApplied(index, timeout: left()) != nil else {
            throw NodeError(
                .unavailable,
                "\(id) has not applied log index \(index) within \(timeout) (it has applied \(applied.value))")
        }
        switch try await digests.outcome(at: index, timeout: left()) {
        case .done(let digest)?:
            return digest
        case .hashing?:
            throw NodeError(.unavailable, "\(id) is still hashing its views at log index \(index) after \(timeout)")
        case .failed(let reason, let readFailed)?:
            // A marker a member could not take never gets a digest there: a new verify is needed.
            throw NodeError(
                readFailed ? .internal : .notFound, "\(id) has no digest of its views at log index \(index): \(reason)")
        case nil:
            throw NodeError(
                .notFound,
                "\(id) holds no digest of its views at log index \(index): no verify marker is there, or \(id) took it in a snapshot, applied it as it started, or has forgotten it (it keeps the last \(ViewsDigests.kept))"
            )
        }
    }
}
