import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// How the replication port notices a peer that is gone without having closed its connections:
/// its host lost power or rebooted, or a partition cut it off. Nothing else would: a member only
/// reads its inbound connections, so one whose peer vanished stayed open for good, holding one of
/// ``RaftTransport/maxInboundConnections`` places; and data sent into a partition was retried by
/// TCP for about 15 minutes, its timer backing off to two minutes, so after the partition healed a
/// member could wait that long to hear its peers again.
public struct ConnectionLiveness: Sendable, Equatable {
    /// A connection with nothing to send is probed after this long without a byte from its peer…
    public var keepAliveIdle: Duration
    /// …then every `keepAliveInterval`, and closed after `keepAliveProbes` unanswered probes;
    /// but with ``unacknowledgedLimit`` set Linux goes by that limit instead of the count (it
    /// closes the connection once a probe is out and the limit has passed since the peer's
    /// last acknowledgement): a silent peer's connection goes 7–9 s after its last byte.
    public var keepAliveInterval: Duration
    public var keepAliveProbes: Int
    /// A connection whose sent data, or a keep-alive probe, goes unacknowledged this long is
    /// closed (`TCP_USER_TIMEOUT`); the member dials again, with back-off, and reaches the peer as
    /// soon as it can. The limit also covers data held back by a peer's full receive window: a
    /// member stopped (SIGSTOP, a debugger, a paused VM) for longer, while more than its socket
    /// buffer is sent to it, has its connections closed and dialled again, as a vanished one.
    public var unacknowledgedLimit: Duration
    /// An inbound connection that owes bytes (its first frame, or the rest of a frame begun) and
    /// receives none for this long is closed: its peer is stuck, or was never a member.
    public var stalledFrameDeadline: Duration

    /// The defaults: a partition or a vanished peer costs a connection after 5 s without an
    /// acknowledgement. A longer limit left connections open, their retransmission timer backing
    /// off, through cuts shorter than it: with 25 s, a member cut off for 13 s was back 12 s after
    /// the cut healed (the timer's next try), 1–2 s after cuts past the limit; with 5 s the wait
    /// after any cut is at most about 3 s (the timer's step after a 3 s cut), as a reconnect is.
    public init(
        keepAliveIdle: Duration = .seconds(5), keepAliveInterval: Duration = .seconds(2), keepAliveProbes: Int = 3,
        unacknowledgedLimit: Duration = .seconds(5), stalledFrameDeadline: Duration = .seconds(30)
    ) {
        self.keepAliveIdle = keepAliveIdle
        self.keepAliveInterval = keepAliveInterval
        self.keepAliveProbes = keepAliveProbes
        self.unacknowledgedLimit = unacknowledgedLimit
        self.stalledFrameDeadline = stalledFrameDeadline
    }

    /// The socket options that carry it, for every connection both ways (the kernel counts the
    /// keep-alive times in whole seconds, at least one; the unacknowledged limit in milliseconds).
    var socketOptions: [(ChannelOptions.Types.SocketOption, SocketOptionValue)] {
        func option(_ level: NIOBSDSocket.OptionLevel, _ name: CInt) -> ChannelOptions.Types.SocketOption {
            ChannelOptions.Types.SocketOption(level: level, name: NIOBSDSocket.Option(rawValue: name))
        }
        func seconds(_ duration: Duration) -> SocketOptionValue {
            SocketOptionValue(max(1, duration.components.seconds))
        }
        let milliseconds = TimeAmount(unacknowledgedLimit).nanoseconds / 1_000_000
        return [
            (option(.socket, SO_KEEPALIVE), 1),
            (option(.tcp, CInt(TCP_KEEPIDLE)), seconds(keepAliveIdle)),
            (option(.tcp, CInt(TCP_KEEPINTVL)), seconds(keepAliveInterval)),
            (option(.tcp, CInt(TCP_KEEPCNT)), SocketOptionValue(max(1, keepAliveProbes))),
            (option(.tcp, CInt(TCP_USER_TIMEOUT)), SocketOptionValue(max(1, milliseconds))),
        ]
    }
}

extension ServerBootstrap {
    /// Sets `liveness`'s socket options on every accepted connection.
    func childChannelOptions(_ liveness: ConnectionLiveness) -> ServerBootstrap {
        liveness.socketOptions.reduce(self) { $0.childChannelOption($1.0, value: $1.1) }
    }

    /// Sets `liveness`'s socket options on the listening socket itself.
    func serverChannelOptions(_ liveness: ConnectionLiveness) -> ServerBootstrap {
        liveness.socketOptions.reduce(self) { $0.serverChannelOption($1.0, value: $1.1) }
    }
}

extension ClientBootstrap {
    /// Sets `liveness`'s socket options on the connection.
    func channelOptions(_ liveness: ConnectionLiveness) -> ClientBootstrap {
        liveness.socketOptions.reduce(self) { $0.channelOption($1.0, value: $1.1) }
    }
}
