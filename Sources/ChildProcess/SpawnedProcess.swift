import Foundation
import Synchronization

/// A child process the tests start with `posix_spawn` and wait for on a thread of its own.
///
/// The tests do not use Foundation's `Process`: on Linux its `run()` reads `/proc/self/fd` and
/// copies each entry's whole name, reading past glibc's buffer now and then, and one CI run
/// crashed there ("Bad pointer dereference" in a `memcpy` under `Process.run()`; fixed in
/// swift-corelibs-foundation after Swift 6.3.1, PR #5472). This type does what the tests used of it:
/// start a program with its three standard streams set, signal it, and learn when and how it ended.
///
/// The child inherits no file descriptor but its three streams (`closefrom(3)` in the child), so
/// a pipe another test reads to its end is never held open by this one's child.
public final class SpawnedProcess: Sendable {
    /// Where one of the child's standard streams goes.
    public enum Stream: Sendable {
        /// `/dev/null`.
        case null
        /// A file, opened for writing at its end (created if missing).
        case file(String)
        /// A descriptor of this process (dup'ed into the child; this process keeps its own).
        case descriptor(Int32)
    }

    /// How the child ended.
    public enum Termination: Sendable, Equatable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal it did not handle ended it.
        case signalled(Int32)
        /// Its end could not be read (waiting for it failed with this errno): not an exit status.
        case unobserved(Int32)
    }

    public let processIdentifier: pid_t
    public let executable: String
    public let arguments: [String]
    /// Shared with the thread that waits for the child (which must not keep `self` alive: the
    /// child is killed when `self` goes).
    private let ending = EndingBox()

    private final class EndingBox: Sendable {
        let state = Mutex<Ending>(Ending())
    }

    private struct Ending {
        var termination: Termination?
        var instant: ContinuousClock.Instant?
        var waiters: [CheckedContinuation<Termination, Never>] = []
    }

    /// Starts `executable` with `arguments` (`argv[0]` is `executable`) and `environment` (this
    /// process's when nil).
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: Stream = .null, stdout: Stream = .null, stderr: Stream = .null
    ) throws {
        self.executable = executable
        self.arguments = arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .descriptor(let descriptor):
                posix_spawn_file_actions_adddup2(&actions, descriptor, target)
            }
        }
        guard let closeFrom = Self.addCloseFrom else {
            throw SpawnFailure(
                description:
                    "cannot start \(executable): this C library lacks posix_spawn_file_actions_addclosefrom_np (glibc 2.34 and later), without which the child would hold every descriptor of the tests"
            )
        }
        _ = closeFrom(&actions, 3)
        // The child starts with no signal blocked and every signal's default action, whatever the
        // spawning thread had (a dispatch worker blocks several): a SIGTERM sent to it ends it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let environment = environment ?? ProcessInfo.processInfo.environment
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw SpawnFailure(
                description: "cannot start \(executable): \(String(cString: strerror(status))) (\(status))")
        }
        processIdentifier = pid
        let child = pid
        let ending = self.ending
        // A thread of its own, blocked in waitpid until the child ends: the cooperative pool's
        // few threads must not block, and the end's instant is taken when it happens.
        Thread.detachNewThread {
            // Wait without reaping, then reap under the lock ``kill(_:)`` takes: a signal is never
            // sent to a pid the kernel may have handed to another process.
            var info = siginfo_t()
            var waited: Int32
            repeat {
                waited = waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT)
            } while waited == -1 && errno == EINTR
            let (termination, waiters) = ending.state.withLock { state in
                // (Without blocking: the lock is held. The child is a zombie by now, unless the
                // wait above failed, which leaves the end unobserved rather than a false exit 0.)
                var raw: Int32 = 0
                var reaped: pid_t
                repeat { reaped = waitpid(child, &raw, WNOHANG) } while reaped == -1 && errno == EINTR
                let termination: Termination =
                    reaped != child
                    ? .unobserved(waited == -1 ? errno : 0)
                    : raw & 0x7f == 0 ? .exited((raw >> 8) & 0xff) : .signalled(raw & 0x7f)
                state.termination = termination
                state.instant = .now
                defer { state.waiters = [] }
                return (termination, state.waiters)
            }
            for waiter in waiters { waiter.resume(returning: termination) }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare; found at run time.
    private static let addCloseFrom:
        (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
            guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
            else { return nil }
            return unsafeBitCast(
                symbol,
                to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
        }()

    /// Whether the child has not yet been seen to end.
    public var isRunning: Bool { ending.state.withLock { $0.termination == nil } }

    /// How it ended; nil while it runs.
    public var termination: Termination? { ending.state.withLock { $0.termination } }

    /// When its end was seen (by the thread waiting for it); nil while it runs.
    public var ended: ContinuousClock.Instant? { ending.state.withLock { $0.instant } }

    /// Its exit status, or the signal that ended it (as Foundation's `Process.terminationStatus`);
    /// -1 while it runs.
    public var terminationStatus: Int32 {
        switch termination {
        case .exited(let status), .signalled(let status): status
        case .unobserved, nil: -1
        }
    }

    /// Sends it `signal` (nothing once it has been reaped: its pid may be another's by then).
    public func kill(_ signal: Int32) {
        ending.state.withLock { state in
            if state.termination == nil { _ = Glibc.kill(processIdentifier, signal) }
        }
    }

    /// Waits for its end without holding a thread.
    @discardableResult
    public func waitUntilExit() async -> Termination {
        await withCheckedContinuation { continuation in
            let ended = ending.state.withLock { state -> Termination? in
                if let termination = state.termination { return termination }
                state.waiters.append(continuation)
                return nil
            }
            if let ended { continuation.resume(returning: ended) }
        }
    }

    /// A test that fails before it stops its child does not leave it running.
    deinit {
        kill(SIGKILL)
    }
}

/// `posix_spawn` refused to start a program.
public struct SpawnFailure: Error, CustomStringConvertible {
    public let description: String
}
