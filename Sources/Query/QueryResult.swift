import Store

/// The rows a query returned, with the column names in order and the views' applied index the
/// rows were read at (all of them from one read transaction).
public struct QueryResult: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[JSONValue]]
    public var appliedIndex: UInt64

    public init(columns: [String], rows: [[JSONValue]], appliedIndex: UInt64) {
        self.columns = columns
        self.rows = rows
        self.appliedIndex = appliedIndex
    }
}
