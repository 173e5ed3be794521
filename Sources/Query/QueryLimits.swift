/// What protects the node from one query: how long a statement may run, and how many rows and
/// bytes it may return; and what protects the other queries from a few heavy ones.
public struct QueryLimits: Sendable {
    public var timeoutMilliseconds: Int
    public var maxRows: Int
    /// The most bytes a result's values may hold (text and blobs by their length, numbers 8 each);
    /// also the longest text or blob a statement may make (`SQLITE_LIMIT_LENGTH`), so one value
    /// never grows past it in memory.
    public var maxBytes: Int
    /// How many read-only connections serve queries at once.
    public var connections: Int
    /// From when a statement counts as long (``LongStatementGate``).
    public var longStatementMilliseconds: Int
    /// How many long statements run at once.
    public var longStatementSlots: Int
    /// How many long statements may wait for a slot; one more is stopped at once (`busy`).
    public var longStatementWaiters: Int

    public init(
        timeoutMilliseconds: Int = 5_000, maxRows: Int = 100_000, maxBytes: Int = 64 << 20, connections: Int = 8,
        longStatementMilliseconds: Int = 200, longStatementSlots: Int = 2, longStatementWaiters: Int = 2
    ) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxRows = maxRows
        self.maxBytes = maxBytes
        self.connections = connections
        self.longStatementMilliseconds = longStatementMilliseconds
        self.longStatementSlots = longStatementSlots
        self.longStatementWaiters = longStatementWaiters
    }
}
