import CLMDB
import CLMDBFault
import Foundation
import Synchronization

/// Says which file a Bus error or a segmentation fault came from when it came from reading a log's
/// LMDB map, before the process stops as it would have.
///
/// LMDB follows page numbers and node offsets from the file without checking them all: damage it
/// walks into reads past the file's end (SIGBUS) or past the map (SIGSEGV), and the process stops
/// with no word of the file. (Values handed back are checked first: ``LMDBEnvironment/PageBounds``.)
/// Each open environment registers its map here; a handler for SIGBUS and SIGSEGV writes the
/// registered message of the map the faulting address lies in, then puts back the handler before
/// it (Swift's backtracer, or the default action), which takes the fault again and stops the
/// process as before.
///
/// The handler may only do what is safe in a signal handler: it loads a fixed table of atomic
/// words and writes a message built beforehand. Registration takes a lock and stores a slot's
/// message before its bounds, so the handler sees a slot whole or not at all (a fault while a map
/// is being replaced may go unexplained). A fault outside every map whose instruction lies in
/// LMDB's code (an address LMDB computed from a damaged node, near zero, say) is explained too:
/// with the only map's message, or, with several maps, a message that names none.
enum LMDBFaultNote {
    /// At most this many maps are watched at once (a node opens one log per Raft group).
    static let slotCount = 32
    /// Words per slot: the map's start and end, then the address and length of each of its two
    /// messages (a fault inside the map; one in LMDB's code outside every map).
    static let wordsPerSlot = 6
    /// Per slot (``wordsPerSlot`` words): start, end, then each message's address and length; stored
    /// with release ordering (the messages first, the bounds last) and loaded with acquire
    /// ordering by the handler.
    nonisolated(unsafe) static let table: UnsafeMutablePointer<Atomic<UInt>> = {
        let table = UnsafeMutablePointer<Atomic<UInt>>.allocate(capacity: slotCount * wordsPerSlot)
        for word in 0..<(slotCount * wordsPerSlot) { (table + word).initialize(to: Atomic(0)) }
        return table
    }()
    /// Which slots are taken, by the owner's identity.
    static let owners = Mutex<[ObjectIdentifier?]>(Array(repeating: nil, count: slotCount))
    /// The handlers before this one's, read before it is installed: SIGBUS first, then SIGSEGV.
    nonisolated(unsafe) static let previous: UnsafeMutablePointer<sigaction> = {
        let previous = UnsafeMutablePointer<sigaction>.allocate(capacity: 2)
        previous.initialize(repeating: sigaction(), count: 2)
        return previous
    }()
    /// Where LMDB's code lies (``dwcp_lmdb_code_range``), found as the handler is installed.
    static let lmdbCodeStart = Atomic<UInt>(0)
    static let lmdbCodeEnd = Atomic<UInt>(0)
    /// Said for a fault in LMDB's code outside every map while several maps are watched.
    nonisolated(unsafe) static let anyLogMessage = permanent(outsideMessage(file: nil))

    /// Installs the handler once per process, the first time a map is registered.
    static let installed: Bool = {
        _ = table
        _ = anyLogMessage
        let code = dwcp_lmdb_code_range()
        lmdbCodeStart.store(UInt(code.start), ordering: .releasing)
        lmdbCodeEnd.store(UInt(code.end), ordering: .releasing)
        guard sigaction(SIGBUS, nil, previous) == 0, sigaction(SIGSEGV, nil, previous + 1) == 0 else { return false }
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = handle
        action.sa_flags = SA_SIGINFO | SA_ONSTACK
        sigemptyset(&action.sa_mask)
        return sigaction(SIGBUS, &action, nil) == 0 && sigaction(SIGSEGV, &action, nil) == 0
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
        owners.withLock { owners in
            let slot: Int
            if let owned = owners.firstIndex(of: owner) {
                // The map moved: its message stays, its bounds are replaced.
                slot = owned
                table[slot * wordsPerSlot + 1].store(0, ordering: .releasing)
            } else {
                guard let free = owners.firstIndex(of: nil) else { return }
                slot = free
                owners[slot] = owner
                store(
                    "dwcp: stopped by a fault reading \(file), a log's LMDB file: the file is damaged (LMDB followed a damaged page or node). "
                        + LogStore.damagedLogAdvice + ".\n", at: slot * wordsPerSlot + 2)
                store(Self.outsideMessage(file: file), at: slot * wordsPerSlot + 4)
            }
            table[slot * wordsPerSlot].store(start, ordering: .releasing)
            table[slot * wordsPerSlot + 1].store(start + UInt(size), ordering: .releasing)
        }
    }

    /// Stores `text` where the handler finds it: its address at `word`, its length after.
    private static func store(_ text: String, at word: Int) {
        let (message, count) = permanent(text)
        table[word].store(UInt(bitPattern: message), ordering: .releasing)
        table[word + 1].store(UInt(count), ordering: .releasing)
    }

    /// `text`'s bytes where a signal handler may read them, and how many. Never freed: the
    /// handler may be reading them (a few hundred bytes per log opened).
    private static func permanent(_ text: String) -> (UnsafeMutablePointer<UInt8>, Int) {
        let bytes = Array(text.utf8)
        let message = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        message.initialize(from: bytes, count: bytes.count)
        return (message, bytes.count)
    }

    /// What a fault in LMDB's code at an address outside every map says: most likely damage
    /// (LMDB computed the address from a damaged node), but a fault of dwcp's own (a cursor used
    /// after its transaction ended) would look the same, so the file is checked before anything
    /// is emptied.
    static func outsideMessage(file: String?) -> String {
        let named = file.map { "\($0), a log's LMDB file" } ?? "a log's LMDB file (DATA/log/data.mdb)"
        let directory = file.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? "DATA/log"
        return
            "dwcp: stopped by a fault inside LMDB's code reading \(named), at an address outside the file's map: most likely the file is damaged (LMDB followed a damaged node), but a fault of dwcp's own would look the same. Check the file before emptying anything (mdb_stat -a \(directory) and mdb_dump -a \(directory) > /dev/null, from Debian's lmdb-utils): if it reads whole, report this as a dwcp bug; if not: "
            + LogStore.damagedLogAdvice + ".\n"
    }

    /// Stops watching the map of `owner` (its environment closed).
    static func unregister(_ owner: ObjectIdentifier) {
        owners.withLock { owners in
            guard let slot = owners.firstIndex(of: owner) else { return }
            owners[slot] = nil
            table[slot * wordsPerSlot + 1].store(0, ordering: .releasing)
            table[slot * wordsPerSlot].store(0, ordering: .releasing)
        }
    }

    /// Writes a message of `slot` to standard error (safe in a signal handler): the one for a
    /// fault inside its map, or, `outside`, the one for a fault in LMDB's code outside every map.
    static func say(slot: Int, outside: Bool = false) {
        let words = table + slot * wordsPerSlot + (outside ? 4 : 2)
        if let message = UnsafeRawPointer(bitPattern: words[0].load(ordering: .acquiring)) {
            _ = write(2, message, Int(words[1].load(ordering: .acquiring)))
        }
    }

    /// The signal handler: the message of the map `info`'s address lies in (or, for a fault in
    /// LMDB's code outside every map, of the only map, or one naming none), then the previous
    /// handler restored.
    static let handle: @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = {
        signal, info, context in
        if let info, info.pointee.si_code > 0 {
            let address = UInt(bitPattern: info.pointee._sifields._sigfault.si_addr)
            var explained = false
            var onlySlot = -1
            var slotsWatched = 0
            for slot in 0..<LMDBFaultNote.slotCount {
                let words = LMDBFaultNote.table + slot * LMDBFaultNote.wordsPerSlot
                let end = words[1].load(ordering: .acquiring)
                let start = words[0].load(ordering: .acquiring)
                if end != 0 {
                    slotsWatched += 1
                    onlySlot = slot
                }
                guard address >= start, address < end else { continue }
                LMDBFaultNote.say(slot: slot)
                explained = true
                break
            }
            let instruction = context.map { UInt(dwcp_interrupted_instruction($0)) } ?? 0
            let codeStart = LMDBFaultNote.lmdbCodeStart.load(ordering: .acquiring)
            let codeEnd = LMDBFaultNote.lmdbCodeEnd.load(ordering: .acquiring)
            if !explained, instruction >= codeStart, instruction < codeEnd {
                if slotsWatched == 1 {
                    LMDBFaultNote.say(slot: onlySlot, outside: true)
                } else {
                    _ = write(2, LMDBFaultNote.anyLogMessage.0, LMDBFaultNote.anyLogMessage.1)
                }
            }
        }
        // The handler before this one takes the fault again as returning repeats the access: the
        // runtime's backtracer, or the default action. (Called from here, the backtracer left its
        // helper process behind and the parent never saw the process end.) A signal sent by a
        // process (si_code 0 or less) does not repeat: it is raised again for that handler.
        sigaction(signal, LMDBFaultNote.previous + (signal == SIGBUS ? 0 : 1), nil)
        if let info, info.pointee.si_code <= 0 { raise(signal) }
    }
}
