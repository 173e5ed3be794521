import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// The per-connection policy SQLite enforces for `dwcp sql`: an authorizer that lets a user
/// statement read and call functions but denies everything that writes, attaches, changes the
/// schema or sets a pragma; and a progress handler that interrupts a statement past its deadline,
/// and holds one that runs long until the ``LongStatementGate`` lets it go on.
///
/// The authorizer is strict only while a user statement is compiled and run (``inUserStatement``:
/// a pragma function prepares its own `PRAGMA` as it runs); the statements GRDB itself runs on
/// the connection (opening, `BEGIN DEFERRED` for isolation) are trusted.
final class ReadOnlyGuard: @unchecked Sendable {
    private struct State {
        var inUserStatement = false
        var deadline: ContinuousClock.Instant?
        /// When the user statement began, and from when it counts as long.
        var longFrom: ContinuousClock.Instant?
        var holdsLongSlot = false
        var denied: String?
        var stopped: Stop?
    }

    /// Why the progress handler stopped the user statement.
    enum Stop: Equatable {
        /// It ran to its deadline.
        case deadline
        /// It ran long and waited until its deadline for a long statement's slot.
        case waitedForSlot(since: ContinuousClock.Instant)
        /// It ran long while every slot was taken and enough others waited.
        case busy
    }

    private let state = Mutex(State())
    private let gate: LongStatementGate
    private let longAfter: Duration

    init(gate: LongStatementGate, longAfter: Duration) {
        self.gate = gate
        self.longAfter = longAfter
    }

    /// Pragmas whose argument names a table or index: they only read, whatever the argument. (Not
    /// `integrity_check` or `quick_check`: each runs as one step of SQLite's machine, which this
    /// SQLite's progress handler does not stop at the statement's deadline.)
    static let schemaPragmas: Set<String> = [
        "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list", "table_list",
        "foreign_key_check",
    ]
    /// Pragmas that only read when given no argument (with one, most of them would set something).
    static let readablePragmas: Set<String> = [
        "collation_list", "function_list", "pragma_list", "compile_options", "database_list", "schema_version",
        "user_version", "page_count", "page_size", "freelist_count", "encoding", "auto_vacuum",
        "application_id", "data_version", "module_list",
    ]

    func beginUserStatement(deadline: ContinuousClock.Instant) {
        state.withLock {
            $0.inUserStatement = true
            $0.deadline = deadline
            $0.longFrom = .now + longAfter
            $0.denied = nil
            $0.stopped = nil
        }
    }

    func endUserStatement() {
        let heldSlot = state.withLock { s in
            s.inUserStatement = false
            s.deadline = nil
            s.longFrom = nil
            defer { s.holdsLongSlot = false }
            return s.holdsLongSlot
        }
        if heldSlot { gate.release() }
    }

    /// Why the last user statement was stopped, if the progress handler stopped it.
    var stopped: Stop? { state.withLock { $0.stopped } }

    /// Functions a read may not call: `fts3_tokenizer` returns a tokenizer's address in the
    /// process, and with two arguments registers any address as a tokenizer on the connection
    /// (Debian's SQLite is built with SQLITE_ENABLE_FTS3_TOKENIZER).
    static let deniedFunctions: Set<String> = ["fts3_tokenizer"]

    /// SQLite's own schema tables, which a CREATE, DROP or ALTER writes underneath.
    static let schemaTables: Set<String> = [
        "sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema",
    ]

    /// What the authorizer denied first, for the error message.
    var denied: String? { state.withLock { $0.denied } }

    func authorize(action: Int32, first: String?, second: String?) -> Int32 {
        state.withLock { s in
            guard s.inUserStatement else { return SQLITE_OK }
            let denial: String
            switch action {
            case SQLITE_SELECT, SQLITE_READ, SQLITE_RECURSIVE:
                return SQLITE_OK
            case SQLITE_FUNCTION:
                // (`second` names the function.)
                guard let name = second?.lowercased(), Self.deniedFunctions.contains(name) else { return SQLITE_OK }
                denial = "\(name)()"
            case SQLITE_PRAGMA:
                if let name = first?.lowercased() {
                    if Self.schemaPragmas.contains(name) { return SQLITE_OK }
                    if second == nil && Self.readablePragmas.contains(name) { return SQLITE_OK }
                }
                denial = "PRAGMA \(first ?? "")\(second.map { " = \($0)" } ?? "")"
            case SQLITE_INSERT: denial = "INSERT into \(first ?? "?")"
            case SQLITE_UPDATE where Self.schemaTables.contains(first ?? ""):
                // SQLite asks about an UPDATE of each of its schema table's columns as it connects
                // an eponymous virtual table (`pragma_table_info('vms')`, `dbstat`), which only
                // reads. A user's UPDATE of the schema table cannot pass anyway: SQLite refuses it
                // without writable_schema, the connection is read-only, and such a statement is
                // not read-only (QueryEngine refuses it).
                return SQLITE_OK
            case SQLITE_UPDATE: denial = "UPDATE of \(first ?? "?")"
            case SQLITE_DELETE: denial = "DELETE from \(first ?? "?")"
            case SQLITE_ATTACH: denial = "ATTACH"
            case SQLITE_DETACH: denial = "DETACH"
            case SQLITE_TRANSACTION: denial = "transaction control (\(first ?? ""))"
            case SQLITE_CREATE_TABLE, SQLITE_CREATE_INDEX, SQLITE_CREATE_VIEW, SQLITE_CREATE_TRIGGER,
                SQLITE_CREATE_TEMP_TABLE, SQLITE_CREATE_TEMP_INDEX, SQLITE_CREATE_TEMP_VIEW, SQLITE_CREATE_TEMP_TRIGGER,
                SQLITE_CREATE_VTABLE:
                denial = "CREATE \(first ?? "")"
            case SQLITE_DROP_TABLE, SQLITE_DROP_INDEX, SQLITE_DROP_VIEW, SQLITE_DROP_TRIGGER, SQLITE_DROP_TEMP_TABLE,
                SQLITE_DROP_TEMP_INDEX, SQLITE_DROP_TEMP_VIEW, SQLITE_DROP_TEMP_TRIGGER, SQLITE_DROP_VTABLE:
                denial = "DROP \(first ?? "")"
            case SQLITE_ALTER_TABLE: denial = "ALTER TABLE \(second ?? first ?? "")"
            case SQLITE_ANALYZE: denial = "ANALYZE"
            case SQLITE_REINDEX: denial = "REINDEX"
            case SQLITE_SAVEPOINT: denial = "SAVEPOINT"
            default: denial = "operation \(action)"
            }
            // SQLite asks about a CREATE's or DROP's write to its schema table before the
            // statement itself, and stops at the first denial: named for what it is.
            if s.denied == nil { s.denied = Self.schemaTables.contains(first ?? "") ? "changing the schema" : denial }
            return SQLITE_DENY
        }
    }

    /// Non-zero interrupts the running statement. A statement that has run long waits here, on its
    /// reader's thread, for a slot of the gate (never while holding the guard's lock). Only a user
    /// statement is ever stopped: one GRDB runs on the connection afterwards goes on, whatever
    /// stopped the last user statement.
    func progress() -> Int32 {
        enum Step: Equatable {
            case goOn, stop
            case askGate(deadline: ContinuousClock.Instant)
        }
        let now = ContinuousClock.now
        let step: Step = state.withLock { s in
            guard let deadline = s.deadline else { return .goOn }
            if now >= deadline {
                s.stopped = .deadline
                return .stop
            }
            guard !s.holdsLongSlot, let longFrom = s.longFrom, now >= longFrom else { return .goOn }
            return .askGate(deadline: deadline)
        }
        guard case .askGate(let deadline) = step else { return step == .stop ? 1 : 0 }
        let admission = gate.admit(before: deadline)
        return state.withLock { s in
            switch admission {
            case .admitted:
                s.holdsLongSlot = true
                return 0
            case .deadlinePassed:
                s.stopped = .waitedForSlot(since: now)
                return 1
            case .busy:
                s.stopped = .busy
                return 1
            }
        }
    }

    /// Installs this guard on a connection, and forbids ATTACH outright.
    func install(on connection: OpaquePointer) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_set_authorizer(
            connection,
            { context, action, first, second, _, _ in
                let guard_ = Unmanaged<ReadOnlyGuard>.fromOpaque(context!).takeUnretainedValue()
                return guard_.authorize(
                    action: action, first: first.map { String(cString: $0) }, second: second.map { String(cString: $0) }
                )
            },
            context)
        sqlite3_progress_handler(
            connection, 1_000,
            { context in Unmanaged<ReadOnlyGuard>.fromOpaque(context!).takeUnretainedValue().progress() }, context)
        sqlite3_limit(connection, SQLITE_LIMIT_ATTACHED, 0)
    }
}
