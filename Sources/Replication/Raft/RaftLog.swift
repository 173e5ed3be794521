import Store

/// The Raft state machine's in-memory view of its log: the snapshot it was compacted behind, the
/// entries after it, how far they are committed, durable on this node, and handed out to apply.
///
/// The driver keeps the same entries in LMDB; this copy is what the protocol reasons over. It is
/// bounded by compaction (the product compacts behind every views snapshot).
struct RaftLog: Sendable {
    var snapshot: RaftSnapshotMeta
    /// `entries[i].index == snapshot.index + 1 + i`.
    var entries: [LogEntry]
    var committed: UInt64
    /// Entries through here are durable on this node (the driver said so).
    var persisted: UInt64
    /// Entries through here were handed to the driver to apply.
    var applied: UInt64

    init(snapshot: RaftSnapshotMeta, entries: [LogEntry], committed: UInt64) {
        self.snapshot = snapshot
        self.entries = entries
        let last = entries.last?.index ?? snapshot.index
        self.committed = min(max(committed, snapshot.index), last)
        persisted = last
        applied = snapshot.index
    }

    var firstIndex: UInt64 { snapshot.index + 1 }
    var lastIndex: UInt64 { entries.last?.index ?? snapshot.index }
    var lastTerm: UInt64 { entries.last?.term ?? snapshot.term }

    /// The term of the entry at `index`; nil when it is compacted away or beyond the end.
    func term(at index: UInt64) -> UInt64? {
        if index == snapshot.index { return snapshot.term }
        guard index > snapshot.index, index <= lastIndex else { return nil }
        return entries[Int(index - snapshot.index - 1)].term
    }

    func entry(at index: UInt64) -> LogEntry? {
        guard index > snapshot.index, index <= lastIndex else { return nil }
        return entries[Int(index - snapshot.index - 1)]
    }

    func matches(index: UInt64, term: UInt64) -> Bool { self.term(at: index) == term }

    /// Entries from `start` on, at most `maxCount` and about `maxBytes` of payload (never fewer than one).
    func entries(from start: UInt64, maxCount: Int, maxBytes: Int) -> [LogEntry] {
        guard start > snapshot.index, start <= lastIndex else { return [] }
        var result: [LogEntry] = []
        var bytes = 0
        var index = start
        while index <= lastIndex, result.count < maxCount {
            let entry = entries[Int(index - snapshot.index - 1)]
            if !result.isEmpty, bytes + entry.payload.count > maxBytes { break }
            bytes += entry.payload.count
            result.append(entry)
            index += 1
        }
        return result
    }

    /// Appends entries a leader sent after `prevIndex`, dropping any conflicting suffix first.
    /// Returns the index the log was truncated from, if it was.
    mutating func append(after prevIndex: UInt64, _ incoming: [LogEntry]) -> (truncatedFrom: UInt64?, new: [LogEntry]) {
        var firstNew = incoming.count
        for (offset, entry) in incoming.enumerated() {
            if entry.index <= snapshot.index { continue }
            if let existing = term(at: entry.index), existing == entry.term { continue }
            firstNew = offset
            break
        }
        guard firstNew < incoming.count else { return (nil, []) }
        let fresh = Array(incoming[firstNew...])
        let start = fresh[0].index
        var truncated: UInt64?
        if start <= lastIndex {
            precondition(start > committed, "Raft: a leader asked to overwrite committed entry \(start)")
            entries.removeLast(Int(lastIndex - start + 1))
            truncated = start
            persisted = min(persisted, start - 1)
        }
        entries.append(contentsOf: fresh)
        return (truncated, fresh)
    }

    /// Appends entries this node (the leader) creates.
    mutating func appendLocal(_ new: [LogEntry]) { entries.append(contentsOf: new) }

    /// Drops the entries through `index` behind a snapshot taken there. Returns the log's former
    /// storage, which holds them: whoever drops it frees them (see ``Raft/compact(through:)``).
    mutating func compact(through index: UInt64, membership: RaftMembership) -> [LogEntry] {
        guard index > snapshot.index, index <= applied, let term = term(at: index) else { return [] }
        let former = entries
        entries = Array(former[Int(index - snapshot.index)...])
        snapshot = RaftSnapshotMeta(index: index, term: term, membership: membership)
        return former
    }

    /// Replaces the whole log with a snapshot received from the leader; returns the entries it
    /// held (for the driver to free away from its lock).
    mutating func restore(_ meta: RaftSnapshotMeta) -> [LogEntry] {
        let former = entries
        snapshot = meta
        entries = []
        committed = meta.index
        applied = meta.index
        persisted = meta.index
        return former
    }

    /// The largest index ≤ `index` whose term is ≤ `term` (for fast back-off over conflicts).
    func lastIndex(atOrBefore index: UInt64, withTermAtMost term: UInt64) -> UInt64 {
        var candidate = min(index, lastIndex)
        while candidate > snapshot.index, let t = self.term(at: candidate), t > term {
            candidate -= 1
        }
        return candidate
    }
}
