import Foundation
import GRDB
import GRDBSQLite
import Store
import Synchronization

/// Runs `dwcp sql` queries against the views on read-only connections.
///
/// Read-only is enforced by SQLite, not by looking at the text: the connections are opened
/// read-only and carry an authorizer (``ReadOnlyGuard``) that denies writes, ATTACH, schema changes
/// and writing pragmas when the statement is compiled. A progress handler stops a statement at
/// its deadline, and results beyond the row limit are refused. A few statements may run long at
/// once (``LongStatementGate``), so short queries are answered beside heavy ones. `.tables` and
/// `.schema [TABLE]` are answered from `sqlite_master`.
public final class QueryEngine: Sendable {
    public let limits: QueryLimits
    /// The views file the queries read.
    public let path: String
    private let pool: DatabasePool
    /// One guard per connection, found by the connection's handle.
    private let guards: GuardRegistry
    /// The slots of the statements that run long.
    let longStatements: LongStatementGate

    final class GuardRegistry: Sendable {
        let byConnection = Mutex<[UInt: ReadOnlyGuard]>([:])
    }

    public init(path: String, limits: QueryLimits = QueryLimits()) throws {
        self.limits = limits
        self.path = path
        let guards = GuardRegistry()
        let gate = LongStatementGate(slots: limits.longStatementSlots, waiters: limits.longStatementWaiters)
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "sql"
        configuration.maximumReaderCount = max(limits.connections, 1)
        configuration.prepareDatabase { db in
            let guard_ = ReadOnlyGuard(gate: gate, longAfter: .milliseconds(limits.longStatementMilliseconds))
            guard let connection = db.sqliteConnection else { return }
            sqlite3_limit(connection, SQLITE_LIMIT_LENGTH, Int32(clamping: limits.maxBytes))
            guard_.install(on: connection)
            guards.byConnection.withLock { $0[UInt(bitPattern: connection)] = guard_ }
        }
        self.guards = guards
        longStatements = gate
        pool = try DatabasePool(path: path, configuration: configuration)
    }

    /// Runs one query (or `.tables` / `.schema [TABLE]`).
    public func run(_ query: String, maxRows: Int? = nil) async throws -> QueryResult {
        let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw QueryError(.empty, "empty query") }
        let rowLimit = min(maxRows ?? limits.maxRows, limits.maxRows)
        do {
            if text.hasPrefix(".") { return try await runCommand(text, maxRows: rowLimit) }
            return try await pool.read { db in
                try self.runUserStatement(text, arguments: [], db: db, maxRows: rowLimit)
            }
        } catch {
            throw damageFound(in: error) ?? error
        }
    }

    /// Synchronous form, for tools and benchmarks that are not async.
    public func runSync(_ query: String, maxRows: Int? = nil) throws -> QueryResult {
        let text = query.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw QueryError(.empty, "empty query") }
        do {
            return try pool.read { db in
                try self.runUserStatement(
                    text, arguments: [], db: db, maxRows: min(maxRows ?? limits.maxRows, limits.maxRows))
            }
        } catch {
            throw damageFound(in: error) ?? error
        }
    }

    /// When `error` is SQLite finding the views damaged: the marker that has the node rebuild them
    /// at its next start is left, and the refusal says so. Nothing is lost: the log holds
    /// everything the views do.
    private func damageFound(in error: any Error) -> QueryError? {
        let found = (error as? QueryError)?.cause ?? error
        guard ViewStore.isDamage(found) else { return nil }
        let marked = ViewStore.markDamaged(viewsAt: path, found)
        return QueryError(.damaged, marked.message, cause: marked)
    }

    private func runCommand(_ text: String, maxRows: Int) async throws -> QueryResult {
        // A closing ';' out of SQL habit (`.tables;`) is let pass; names match as SQLite's do,
        // whatever their case (`.schema VMS`).
        var command = Substring(text)
        while let last = command.last, last == ";" || last.isWhitespace { command = command.dropLast() }
        let words = command.split(whereSeparator: \.isWhitespace).map(String.init)
        switch words[0] {
        case ".tables":
            guard words.count == 1 else { throw QueryError(.syntax, "usage: .tables") }
            return try await pool.read { db in
                try self.runTrusted(
                    """
                    SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'
                    ORDER BY name
                    """, arguments: [], db: db)
            }
        case ".schema":
            guard words.count <= 2 else { throw QueryError(.syntax, "usage: .schema [TABLE]") }
            let table = words.count == 2 ? words[1] : nil
            return try await pool.read { db in
                if let table {
                    let exists =
                        try Bool.fetchOne(
                            db,
                            sql:
                                "SELECT count(*) > 0 FROM sqlite_master WHERE type IN ('table','view') AND name = ? COLLATE NOCASE",
                            arguments: [table]) ?? false
                    guard exists else { throw QueryError(.syntax, "no table named \(table)") }
                }
                return try self.runTrusted(
                    """
                    SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
                    AND (? IS NULL OR tbl_name = ? COLLATE NOCASE) ORDER BY tbl_name, type DESC, name
                    """, arguments: [table, table], db: db)
            }
        default:
            throw QueryError(.unknownCommand, "unknown command \(words[0]); available: .tables, .schema [TABLE]")
        }
    }

    private func runTrusted(_ sql: String, arguments: StatementArguments, db: Database) throws -> QueryResult {
        let statement = try db.makeStatement(sql: sql)
        return try collect(statement, arguments: arguments, db: db, maxRows: .max)
    }

    private func runUserStatement(_ sql: String, arguments: StatementArguments, db: Database, maxRows: Int) throws
        -> QueryResult
    {
        guard let connection = db.sqliteConnection,
            let guard_ = guards.byConnection.withLock({ $0[UInt(bitPattern: connection)] })
        else { throw QueryError(.failed, "query connection has no read-only guard") }
        // SQLite compiles the text up to a NUL and would drop the rest unsaid.
        guard !sql.utf8.contains(0) else {
            throw QueryError(.syntax, "the query holds a NUL character: SQLite would read only what comes before it")
        }
        guard_.beginUserStatement(deadline: .now + .milliseconds(limits.timeoutMilliseconds))
        defer { guard_.endUserStatement() }
        let statement: Statement
        do {
            statement = try db.makeStatement(sql: sql)
        } catch let error as DatabaseError {
            // A denied function call fails as an error of its own ("not authorized to use
            // function: …"), not SQLITE_AUTH.
            if error.resultCode == .SQLITE_AUTH || guard_.denied != nil {
                throw QueryError(
                    .readOnly,
                    "refused: dwcp sql is read-only; \(guard_.denied ?? "this statement") is not allowed", cause: error)
            }
            // SQLite's own refusal to compile a write to its schema table.
            if let message = error.message, message.hasSuffix("may not be modified") {
                throw QueryError(.readOnly, "refused: dwcp sql is read-only; \(message)", cause: error)
            }
            if error.message?.contains("Multiple statements") == true {
                throw QueryError(.syntax, "one statement at a time, please", cause: error)
            }
            throw QueryError(.syntax, error.message ?? "\(error)", cause: error)
        }
        guard statement.isReadonly else {
            throw QueryError(.readOnly, "refused: dwcp sql is read-only; this statement would write")
        }
        do {
            return try collect(statement, arguments: arguments, db: db, maxRows: maxRows)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_INTERRUPT {
            throw stopped(by: guard_.stopped, cause: error)
        } catch let error as DatabaseError where guard_.denied != nil {
            // What a statement prepares as it runs (a pragma function's own PRAGMA) is held to
            // the same rules.
            throw QueryError(
                .readOnly, "refused: dwcp sql is read-only; \(guard_.denied ?? "") is not allowed", cause: error)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_TOOBIG {
            throw QueryError(
                .tooLarge, "a value of the result would hold more than \(limits.maxBytes >> 20) MiB", cause: error)
        } catch let error as DatabaseError where error.message == "not authorized" {
            // SQLite's word for load_extension() on a connection that loads none.
            throw QueryError(.readOnly, "refused: dwcp sql loads no extensions (load_extension)", cause: error)
        } catch let error as DatabaseError {
            throw QueryError(.failed, error.message ?? "\(error)", cause: error)
        }
    }

    /// The error of a statement the progress handler stopped.
    private func stopped(by stop: ReadOnlyGuard.Stop?, cause: DatabaseError) -> QueryError {
        let long = "\(limits.longStatementSlots) statements past \(limits.longStatementMilliseconds) ms run at once"
        switch stop {
        case .busy:
            return QueryError(
                .busy,
                "query stopped: it ran past \(limits.longStatementMilliseconds) ms while other long queries held every slot (\(long), and \(limits.longStatementWaiters) more may wait); retry when they end, or narrow it",
                cause: cause)
        case .waitedForSlot(let since):
            let waited = Int((ContinuousClock.now - since) / .milliseconds(1))
            return QueryError(
                .timeout,
                "query stopped after \(limits.timeoutMilliseconds) ms (the statement timeout), \(waited) ms of them waiting for other long queries to end (\(long))",
                cause: cause)
        case .deadline, nil:
            return QueryError(
                .timeout, "query stopped after \(limits.timeoutMilliseconds) ms (the statement timeout)", cause: cause)
        }
    }

    private func collect(_ statement: Statement, arguments: StatementArguments, db: Database, maxRows: Int) throws
        -> QueryResult
    {
        let columns = statement.columnNames
        var rows: [[JSONValue]] = []
        var bytes = 0
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        // (The values are read from the statement's current row: GRDB's text values end at the
        // first NUL, and `'a' || char(0) || 'b'` came back as "a".)
        let sqlite = statement.sqliteStatement
        let count = Int32(columns.count)
        while try cursor.next() != nil {
            if rows.count >= maxRows {
                throw QueryError(
                    .tooManyRows,
                    "the result has more than \(maxRows) row\(maxRows == 1 ? "" : "s"); add a LIMIT or a WHERE clause")
            }
            var values: [JSONValue] = []
            values.reserveCapacity(Int(count))
            for column in 0..<count {
                switch sqlite3_column_type(sqlite, column) {
                case SQLITE_INTEGER:
                    values.append(.int(sqlite3_column_int64(sqlite, column)))
                    bytes += 8
                case SQLITE_FLOAT:
                    values.append(JSONValue(real: sqlite3_column_double(sqlite, column)))
                    bytes += 8
                case SQLITE_TEXT:
                    let length = Int(sqlite3_column_bytes(sqlite, column))
                    let text = sqlite3_column_text(sqlite, column).map {
                        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
                    }
                    values.append(.string(text ?? ""))
                    bytes += length
                case SQLITE_BLOB:
                    let length = Int(sqlite3_column_bytes(sqlite, column))
                    let blob = sqlite3_column_blob(sqlite, column).map {
                        UnsafeRawBufferPointer(start: $0, count: length)
                    }
                    values.append(JSONValue(blob: blob ?? UnsafeRawBufferPointer(start: nil, count: 0)))
                    bytes += length
                default:
                    values.append(.null)
                    bytes += 8
                }
            }
            if bytes > limits.maxBytes {
                throw QueryError(
                    .tooLarge,
                    "the result holds more than \(limits.maxBytes >> 20) MiB; select fewer columns or rows")
            }
            rows.append(values)
        }
        let applied = try Int64.fetchOne(db, sql: "SELECT applied_index FROM dwcp_state WHERE id = 1") ?? 0
        return QueryResult(columns: columns, rows: rows, appliedIndex: UInt64(applied))
    }
}
