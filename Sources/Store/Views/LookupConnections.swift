import GRDB
import Synchronization

/// Read-only connections to the views for short synchronous lookups, one lent to each call and
/// taken back after it.
///
/// GRDB's `DatabasePool` lends its readers with more work per read: it finds a free reader
/// through a key path built at run time, takes a lock and a semaphore, and runs `PRAGMA
/// schema_version` before each read to notice schema changes; on the intent path that cost a
/// leader a sixth of its CPU per write (BENCHMARKS.md, bench/region, item 8). The views' schema never
/// changes while they are open (a snapshot install copies rows into the same tables), so these
/// connections skip that check. A call never waits for another: when every connection is lent,
/// it opens one more; at most ``maximumIdle`` are kept.
final class LookupConnections: Sendable {
    private let path: String
    private let idle = Mutex<[DatabaseQueue]>([])
    /// How many idle connections are kept for later calls.
    static let maximumIdle = 8

    init(path: String) {
        self.path = path
    }

    /// Runs `body` on a lent connection, on the caller's thread, with no transaction around it.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        let connection = try idle.withLock { $0.popLast() } ?? open()
        defer {
            idle.withLock { connections in
                if connections.count < Self.maximumIdle { connections.append(connection) }
            }
        }
        return try connection.unsafeRead(body)
    }

    /// How many connections wait to be lent.
    var idleCount: Int { idle.withLock { $0.count } }

    private func open() throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.label = "views-lookups"
        configuration.readonly = true
        return try DatabaseQueue(path: path, configuration: configuration)
    }
}
