import NIOCore
import Synchronization

/// Bounds what inbound replication connections hand over for work slower than the network: a
/// snapshot's chunks, queued for the disk. Without it a member whose disk is slower than its link
/// kept the difference, up to a whole snapshot, in memory.
///
/// The receiver counts the bytes it queues (``added(_:)``) and those it is done with
/// (``finished(_:)``). A connection that delivers a chunk while ``limit`` bytes or more wait stops
/// reading (NIO's `autoRead` off) until the backlog is under the limit again; TCP then holds the
/// sender, whose own window of chunks in flight is already small (``RaftTransport``'s
/// `sendTellingWhenWritten`). A connection held so is not closed as stalled: the silence is ours.
public final class InboundBacklog: Sendable {
    /// The bytes that may wait before connections are held.
    public let limit: Int
    private let state = Mutex(State())

    private struct State {
        var bytes = 0
        var held: [any Channel] = []
    }

    public init(limit: Int) { self.limit = limit }

    /// The bytes waiting now.
    public var bytes: Int { state.withLock { $0.bytes } }

    /// How many connections are held now.
    public var heldConnections: Int { state.withLock { $0.held.count } }

    /// The receiver queued `count` bytes.
    public func added(_ count: Int) { state.withLock { $0.bytes += count } }

    /// The receiver is done with `count` bytes it queued: once under the limit, held connections
    /// read again.
    public func finished(_ count: Int) {
        let released: [any Channel] = state.withLock { state in
            state.bytes -= count
            guard state.bytes < limit, !state.held.isEmpty else { return [] }
            defer { state.held = [] }
            return state.held
        }
        // From another thread this hops to the channel's loop, after the hold that put it here.
        for channel in released { channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
    }

    /// On `channel`'s event loop, after it delivered a chunk: stops its reads while the backlog is
    /// at or over the limit. Returns whether it did.
    @discardableResult
    func holdIfFull(_ channel: any Channel) -> Bool {
        let full = state.withLock { state in
            guard state.bytes >= limit else { return false }
            // (Frames read before the hold are still decoded: the same connection may come again.)
            if !state.held.contains(where: { $0 === channel }) { state.held.append(channel) }
            return true
        }
        if full { try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false) }
        return full
    }
}
