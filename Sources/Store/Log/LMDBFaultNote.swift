import CLMDB
import Foundation
import Synchronization

/// Says which file a Bus error or a segmentation fault came from when it came from reading a log's
/// LMDB map, before the process stops as it would have.
///
/// LMDB follows page numbers and node offsets from the file without checking them all: damage it
/// walks into reads past the file's end (SIGBUS) or past the map (SIGSEGV), and the process stops
/// with no word of the file. (Values handed back are checked first: ``LMDBEnvironment/bytes(of:)``.)
/// Each open environment registers its map here; a handler for SIGBUS and SIGSEGV writes the
/// registered message of the map the faulting address lies in, then puts back the handler before
/// it (Swift's backtracer, or the default action), which takes the fault again and stops the
/// process as before.
///
/// The handler may only do what is safe in a signal handler: it reads a fixed table of words and
/// writes a message built beforehand. Registration takes a lock; the table's words are written one
/// at a time, a slot's message before its bounds, so the handler sees a slot whole or not at all
/// (a fault while a map is being replaced may go unexplained).
enum LMDBFaultNote {
    /// At most this many maps are watched at once (a node opens one log per Raft group).
    static let slotCount = 32
    /// Per slot: start, end, message address, message length.
    nonisolated(unsafe) static let table: UnsafeMutablePointer<UInt> = {
        let table = UnsafeMutablePointer<UInt>.allocate(capacity: slotCount * 4)
        table.initialize(repeating: 0, count: slotCount * 4)
        return table
    }()
    /// Which slots are taken, by the owner's identity.
    static let owners = Mutex<[ObjectIdentifier?]>(Array(repeating: nil, count: slotCount))
    /// The handlers before this one's, by signal: SIGBUS first, then SIGSEGV.
    nonisolated(unsafe) static var previous: (bus: sigaction, segv: sigaction) = (sigaction(), sigaction())
    /// Installs the handler once per process, the first time a map is registered.
    static let installed: Bool = {
        _ = table
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = handle
        action.sa_flags = SA_SIGINFO | SA_ONSTACK
        sigemptyset(&action.sa_mask)
        var bus = sigaction()
        var segv = sigaction()
        guard sigaction(SIGBUS, &action, &bus) == 0, sigaction(SIGSEGV, &action, &segv) == 0 else { return false }
        previous = (bus, segv)
        return true
    }()

    /// What LMDB calls when one of its own assertions fails (the system's liblmdb is built with
    /// them; it then aborts): damage it walked into, such as a branch that points at a page of
    /// another kind. Says which file and what to do; LMDB's message follows on its own line.
    static let assertionFailed: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Void = { env, message in
        var directory: UnsafePointer<CChar>?
        if let env { _ = mdb_env_get_path(env, &directory) }
        let file = directory.map { String(cString: $0) + "/data.mdb" } ?? "a log's data.mdb"
        let what = message.map { String(cString: $0) } ?? "an assertion failed"
        let text =
            "dwcp: LMDB stopped the process reading \(file), a log's LMDB file (\(what)): the file is damaged. "
            + LogStore.damagedLogAdvice + ".\n"
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Watches the map of `owner` at `start` of `size` bytes, the data file at `file`; again with
    /// the same owner after the map moved.
    static func register(_ owner: ObjectIdentifier, start: UInt, size: Int, file: String) {
        _ = installed
        let text =
            "dwcp: stopped by a fault reading \(file), a log's LMDB file: the file is damaged (LMDB followed a damaged page or node past the file's end). "
            + LogStore.damagedLogAdvice + ".\n"
        let bytes = Array(text.utf8)
        // Never freed: the handler may be reading it (a few hundred bytes per log opened).
        let message = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        message.initialize(from: bytes, count: bytes.count)
        owners.withLock { owners in
            let slot = owners.firstIndex(of: owner) ?? owners.firstIndex(of: nil)
            guard let slot else { return }
            owners[slot] = owner
            let words = table + slot * 4
            words[1] = 0
            words[0] = 0
            words[2] = UInt(bitPattern: message)
            words[3] = UInt(bytes.count)
            words[0] = start
            words[1] = start + UInt(size)
        }
    }

    /// Stops watching the map of `owner` (its environment closed).
    static func unregister(_ owner: ObjectIdentifier) {
        owners.withLock { owners in
            guard let slot = owners.firstIndex(of: owner) else { return }
            owners[slot] = nil
            (table + slot * 4)[1] = 0
            (table + slot * 4)[0] = 0
        }
    }

    /// The signal handler: the message of the map `info`'s address lies in, then the previous
    /// handler restored.
    static let handle: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = {
        signal, info, context in
        if let info {
            let address = UInt(bitPattern: info.pointee._sifields._sigfault.si_addr)
            for slot in 0..<LMDBFaultNote.slotCount {
                let words = LMDBFaultNote.table + slot * 4
                if address >= words[0], address < words[1], let message = UnsafeRawPointer(bitPattern: words[2]) {
                    _ = write(2, message, Int(words[3]))
                    break
                }
            }
        }
        // The handler before this one takes the fault again as returning repeats the access: the
        // runtime's backtracer, or the default action. (Called from here, the backtracer left its
        // helper process behind and the parent never saw the process end.)
        var before = signal == SIGBUS ? LMDBFaultNote.previous.bus : LMDBFaultNote.previous.segv
        sigaction(signal, &before, nil)
    }
}
