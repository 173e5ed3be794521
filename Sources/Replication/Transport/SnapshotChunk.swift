/// A piece of a state-machine snapshot on its way from the leader to a member that needs it.
///
/// A snapshot (the views at `index`, of `term`) travels as consecutive chunks; every chunk names the
/// whole file's size and CRC-32C, so the receiver knows when it has everything and whether it is
/// intact. Only then does it hand Raft the `.snapshot` message that follows the chunks; a snapshot
/// that arrives incomplete is dropped and the leader sends it again.
public struct SnapshotChunk: Sendable, Equatable {
    public var from: String
    public var to: String
    public var index: UInt64
    public var term: UInt64
    public var offset: UInt64
    public var totalBytes: UInt64
    public var checksum: UInt32
    public var data: [UInt8]

    public init(
        from: String, to: String, index: UInt64, term: UInt64, offset: UInt64, totalBytes: UInt64, checksum: UInt32,
        data: [UInt8]
    ) {
        self.from = from
        self.to = to
        self.index = index
        self.term = term
        self.offset = offset
        self.totalBytes = totalBytes
        self.checksum = checksum
        self.data = data
    }

    /// The size of the chunks a snapshot is cut into.
    public static let size = 1 << 20
}
