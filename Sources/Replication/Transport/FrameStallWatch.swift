import NIOCore
import Store

/// Closes an inbound replication connection that owes bytes and sends none: one that has not sent
/// its first frame, or stopped in the middle of a frame, and was silent for the deadline since its
/// last byte. Without it such a connection kept its place among
/// ``RaftTransport/maxInboundConnections`` and the part of a frame it had sent (up to
/// ``RaftFrame/maxFrameBytes``) for good. Driven by ``RaftFrameDecoder`` on the connection's
/// event loop: the clock is read and the timer armed only while bytes are owed, so a connection
/// whose frames arrive whole (every busy one) costs neither.
final class FrameStallWatch {
    let deadline: TimeAmount
    private var lastHeard = NIODeadline.now()
    /// A frame is owed: the first one, or the rest of one begun.
    private var owing = true
    private var sawFrame = false
    /// How much of the owed frame came: bytes in, and the frame's length once its four bytes did.
    private var received = 0
    private var length: Int?
    private var timer: Scheduled<Void>?
    /// The last firing found the connection's reads held: this one starts the deadline afresh.
    private var sawHold = false
    /// Fired, or stopped: no timer is armed again (the decoder's last pass, as the connection
    /// closes, waits for more like any other).
    private var done = false
    /// The connection was closed for a stall: what it left half sent is not news again.
    private(set) var fired = false

    init(deadline: TimeAmount) { self.deadline = deadline }

    /// The connection opened (the decoder was added): its first frame is owed from now.
    func start(context: ChannelHandlerContext) {
        lastHeard = .now()
        arm(context, at: lastHeard + deadline)
    }

    /// Bytes arrived: progress, if a frame was owed (one begun now is timed from ``waiting``).
    func heard() { if owing { lastHeard = .now() } }

    /// After a frame was taken off the buffer: if nothing is left, nothing is owed.
    func tookFrame(leaving remaining: Int) {
        sawFrame = true
        if remaining == 0 { owing = false }
    }

    /// The decoder waits for more: `received` bytes of a frame `length` long (nil while its
    /// length has not come whole) are in.
    func waiting(context: ChannelHandlerContext, received: Int, of length: Int?) {
        self.received = received
        self.length = length
        guard received > 0 || !sawFrame else {
            owing = false
            return
        }
        if !owing { lastHeard = .now() }
        owing = true
        if timer == nil { arm(context, at: lastHeard + deadline) }
    }

    /// The decoder is removed (the connection closed): the timer goes with it.
    func stop() {
        done = true
        timer?.cancel()
        timer = nil
    }

    private func arm(_ context: ChannelHandlerContext, at when: NIODeadline) {
        guard !done else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { [self] in
            timer = nil
            guard owing, !done, context.channel.isActive else { return }
            // Reads held by the receiver (``InboundBacklog``) now, or at the last firing (let go
            // since): the silence is this member's, and the deadline starts afresh.
            let held = (try? context.channel.syncOptions?.getOption(ChannelOptions.autoRead)) == false
            if held || sawHold {
                sawHold = held
                lastHeard = .now()
                arm(context, at: lastHeard + deadline)
                return
            }
            let silent = NIODeadline.now() - lastHeard
            guard silent >= deadline else {
                arm(context, at: lastHeard + deadline)
                return
            }
            done = true
            fired = true
            context.fireErrorCaught(ReplicationError(.stalled, explanation(silent: silent)))
        }
    }

    /// Why the connection is closed, in words: what it owed and for how long it sent nothing.
    func explanation(silent: TimeAmount) -> String {
        let seconds = Duration.nanoseconds(silent.nanoseconds).inTenthsOfSeconds
        guard sawFrame || received > 0 else { return "it sent no frame in the \(seconds) since it opened" }
        if let length {
            return "a frame stopped arriving: \(received - 4) of its \(length) bytes came, then nothing for \(seconds)"
        }
        return "a frame stopped arriving: \(received) of its length's 4 bytes came, then nothing for \(seconds)"
    }
}
