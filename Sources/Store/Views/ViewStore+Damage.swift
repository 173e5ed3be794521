import Foundation
import GRDB

extension ViewStore {
    /// The file beside the views that says SQLite found them damaged, holding why; the next open
    /// rebuilds the views (from the log, or the snapshot the log begins behind) and removes it.
    static func damageMarker(for path: String) -> String { path + ".damaged" }

    /// Why the views were found damaged since the node started (the marker ``markDamaged(viewsAt:_:)``
    /// leaves, which the next start rebuilds by); nil while none is there. One file check.
    public var damageFound: String? {
        guard FileManager.default.fileExists(atPath: Self.damageMarker(for: path)) else { return nil }
        return Self.damageRecorded(for: path) ?? "why was not kept"
    }

    /// What the damage marker of the views at `path` says (nil: no marker, or none readable).
    static func damageRecorded(for path: String) -> String? {
        try? String(contentsOfFile: damageMarker(for: path), encoding: .utf8)
    }

    /// Whether `error`, or the error it wraps, is SQLite finding the file damaged.
    public static func isDamage(_ error: any Error) -> Bool {
        if let error = error as? DatabaseError {
            return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
        }
        if let error = error as? StoreError, let cause = error.cause { return isDamage(cause) }
        return false
    }

    /// Runs an apply or a read; when SQLite finds the views damaged, leaves the marker for the next
    /// open and throws an error that says so. The log holds everything the views do: nothing is lost.
    func markingDamage<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch  where Self.isDamage(error) {
            throw Self.markDamaged(viewsAt: path, error)
        }
    }

    /// ``markingDamage(_:)`` for the async apply and reads.
    func markingDamage<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch  where Self.isDamage(error) {
            throw Self.markDamaged(viewsAt: path, error)
        }
    }

    /// Leaves the marker beside the views at `path`, holding `error`, and returns the error to
    /// report: what was found, and that the next start rebuilds the views from the log. For
    /// readers with connections of their own (`dwcp sql`'s).
    public static func markDamaged(viewsAt path: String, _ error: any Error) -> StoreError {
        let reason = "\(error)"
        let marker = damageMarker(for: path)
        let marked = FileManager.default.createFile(atPath: marker, contents: Data(reason.utf8))
        return StoreError(
            .views,
            "views.sqlite is damaged (\(reason)); "
                + (marked
                    ? "the next start rebuilds them from the log (\(marker) says so)"
                    : "remove \(path) and start again: the views are rebuilt from the log"),
            cause: error)
    }

    /// Checks the whole file as SQLite can (`PRAGMA integrity_check`: every page, every row
    /// against its indexes, the NOT NULL columns), then every value against what the applier
    /// writes (``strayValue(in:index:)``), in read transactions beside the applier. When it finds
    /// damage it leaves the marker, so the next start rebuilds the views, and throws the error that
    /// says so. SQLite keeps no checksum of a row's values: a changed value of the right type and
    /// range that breaks no index or constraint goes unseen (`dwcp cluster verify` compares them).
    public func checkIntegrity() async throws {
        let problems = try await markingDamage {
            try await pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(10)") }
        }
        if problems != ["ok"] {
            throw Self.markDamaged(
                viewsAt: path,
                IntegrityProblems(text: "SQLite's integrity check: " + problems.prefix(3).joined(separator: "; ")))
        }
        let stray = try await markingDamage {
            try await pool.read { db in try Self.strayValue(in: db, index: Self.appliedIndex(db)) }
        }
        if let stray { throw Self.markDamaged(viewsAt: path, IntegrityProblems(text: stray)) }
    }
}

/// What `PRAGMA integrity_check` found, as the cause of the damage it reports.
struct IntegrityProblems: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
