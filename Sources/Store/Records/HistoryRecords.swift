/// The history tables were cut back: applying it deletes the rows of `intents`, `vm_events` and
/// `vm_starts` logged before `beforeIndex`, and the placements before it that are no longer a
/// VM's latest (superseded, or of a VM that no longer exists), on every member alike. The leader
/// proposes it for rows older than its history retention (`dwcp serve --history-retention`).
/// Fields: 10 before_index.
public struct HistoryCompacted: Sendable, Equatable {
    /// The record's type tag in the log.
    static let tag: UInt64 = 10
    /// The history logged before this index goes (never past the record's own index).
    public var beforeIndex: Int64

    public init(beforeIndex: Int64) { self.beforeIndex = beforeIndex }

    init(_ f: FieldReader) throws { beforeIndex = try f.requiredInt64(10, "before_index") }

    func encode(into w: inout FieldWriter) { w.write(10, beforeIndex) }

    var json: JSONValue { .object([("before_index", .int(beforeIndex))]) }
}
