import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An exclusive lock on `DATA/lock` (`flock`), held as long as the node that took it lives, so a
/// second dwcp started on a data directory in use stops at once: two processes would append to
/// one log and one journal at the same time. The file holds the holder's pid, for the message.
/// The kernel lets the lock go when the process ends, however it ends. (The pid read by a start
/// refused in the instant between the holder's lock and its write may be the previous holder's.)
final class DataDirectoryLock: Sendable {
    private let descriptor: Int32

    init(directory: String) throws {
        descriptor = try Self.lock(directory + "/lock", of: directory)
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 { _ = pwrite(descriptor, pid, pid.count, 0) }
    }

    /// Opens and locks `path`; the descriptor, or an error with the file closed again. (Done
    /// before the instance holds it: a throwing init of a class whose properties are all set
    /// still runs `deinit`, which would close the descriptor a second time, by then perhaps
    /// another file's.)
    private static func lock(_ path: String, of directory: String) throws -> Int32 {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw NodeError(.unavailable, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            guard code == EWOULDBLOCK else {
                throw NodeError(.unavailable, "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(
                in: .whitespacesAndNewlines)
            let pid = holder.flatMap(Int32.init)
            if let pid, isExiting(pid) {
                // (A node killed with much guest memory holds the lock until the kernel has taken
                // that memory back: seconds.)
                throw NodeError(
                    .unavailable,
                    "\(directory) is still held by a dwcp that is exiting (pid \(pid)): start again in a moment")
            }
            let by = pid.map { " (pid \($0))" } ?? ""
            throw NodeError(
                .unavailable,
                "\(directory) is in use by another dwcp\(by): a data directory serves one process at a time")
        }
        return descriptor
    }

    /// Whether process `pid` is on its way out: killed, or returned from `main`, and not gone yet
    /// (the kernel's `PF_EXITING` in `/proc/PID/stat`, or a zombie).
    static func isExiting(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        // After "PID (COMM)": state, ppid, pgrp, session, tty, tpgid, flags, …
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 6, let flags = UInt64(fields[6]) else { return false }
        return fields[0] == "Z" || flags & 0x4 != 0
    }

    deinit { close(descriptor) }
}
