/// What protects the node from one query: how long a statement may run, and how many rows and
/// bytes it may return.
public struct QueryLimits: Sendable {
    public var timeoutMilliseconds: Int
    public var maxRows: Int
    /// The most bytes a result's values may hold (text and blobs by their length, numbers 8 each);
    /// also the longest text or blob a statement may make (`SQLITE_LIMIT_LENGTH`), so one value
    /// never grows past it in memory.
    public var maxBytes: Int

    public init(timeoutMilliseconds: Int = 5_000, maxRows: Int = 100_000, maxBytes: Int = 64 << 20) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxRows = maxRows
        self.maxBytes = maxBytes
    }
}
