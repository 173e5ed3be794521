/// The history tables were cut back: applying it deletes the rows of `intents`, `vm_events`,
/// `vm_starts` and `placements` logged before `beforeIndex` (each VM's latest placement stays),
/// on every member alike. The leader proposes it for rows older than its history retention
/// (`dwcp serve --history-retention`). Fields: 10 before_index.
public struct HistoryCompacted: Sendable, Equatable {
    public var beforeIndex: Int64

    public init(beforeIndex: Int64) { self.beforeIndex = beforeIndex }

    init(_ f: FieldReader) throws { beforeIndex = try f.requiredInt64(10, "before_index") }

    func encode(into w: inout FieldWriter) { w.write(10, beforeIndex) }

    var json: JSONValue { .object([("before_index", .int(beforeIndex))]) }
}
