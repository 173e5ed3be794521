import NIOCore

extension EventLoop {
    /// Sleeps for `duration` on this loop's own timer, and throws `CancellationError` if the task is
    /// cancelled meanwhile (and the loop's error if it shuts down).
    ///
    /// For a timer that fires a hundred times a second this is much cheaper than `Task.sleep`,
    /// which arms the timer on libdispatch's manager thread: when it fires, that thread wakes a
    /// dispatch worker, which hands the task to the event loop, and re-arming wakes the manager
    /// again. Here the loop's own epoll carries the timer, and with NIO running the tasks the
    /// sleeper resumes on the loop without waking any other thread.
    func sleep(for duration: Duration) async throws {
        let scheduled = scheduleTask(in: TimeAmount(duration)) {}
        try await withTaskCancellationHandler {
            do {
                try await scheduled.futureResult.get()
            } catch EventLoopError.cancelled {
                throw CancellationError()
            }
        } onCancel: {
            scheduled.cancel()
        }
    }
}
