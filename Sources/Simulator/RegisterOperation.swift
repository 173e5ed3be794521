/// One client operation on the simulated key-value store, as the history records it: when it was
/// invoked, when (if ever) it returned, and what it did or saw.
public struct RegisterOperation: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case write(value: String)
        case read(value: String?)
    }

    public var client: Int
    public var key: String
    public var kind: Kind
    public var invokedAt: UInt64
    /// nil: the client never learned the outcome (a write that may or may not have happened).
    public var returnedAt: UInt64?
}
