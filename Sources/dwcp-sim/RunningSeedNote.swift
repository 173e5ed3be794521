import Foundation

/// Names the seed the simulator was running when a trap (a failed precondition in the code under
/// test), a fault or an abort stops the process, which would otherwise lose it.
///
/// The note for each run is written beforehand into a buffer; the signal handler only writes that
/// buffer to stderr, puts the default action back and raises the signal again, as is safe in a
/// handler. The simulator runs one seed at a time, so one note is enough.
enum RunningSeedNote {
    static let capacity = 512
    nonisolated(unsafe) static let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    nonisolated(unsafe) static var length = 0

    /// The note to write if the process stops before the next one is set.
    static func set(_ note: String) {
        let bytes = Array(note.utf8.prefix(capacity))
        length = 0
        buffer.update(from: bytes, count: bytes.count)
        length = bytes.count
    }

    /// The handlers before this one's (the runtime's backtracer, or the default), by signal number.
    nonisolated(unsafe) static let previous: UnsafeMutablePointer<sigaction> = {
        let previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)
        previous.initialize(repeating: sigaction(), count: 65)
        return previous
    }()

    static func install() {
        _ = buffer
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handle
        sigemptyset(&action.sa_mask)
        for signal in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            sigaction(signal, &action, previous + Int(signal))
        }
    }

    static let handle: @convention(c) (Int32) -> Void = { signal in
        _ = write(2, RunningSeedNote.buffer, RunningSeedNote.length)
        sigaction(signal, RunningSeedNote.previous + Int(signal), nil)
        // Delivered to that handler once this returns (a fault would also repeat): the process
        // stops as it would have, with the runtime's backtrace.
        raise(signal)
    }
}
