/// What protects the node from one query: how long a statement may run and how many rows it may return.
public struct QueryLimits: Sendable {
    public var timeoutMilliseconds: Int
    public var maxRows: Int

    public init(timeoutMilliseconds: Int = 5_000, maxRows: Int = 100_000) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.maxRows = maxRows
    }
}
