import Foundation
import GRDB

extension ViewStore {
    /// The file beside the views that says SQLite found them damaged, holding why; the next open
    /// rebuilds the views (from the log, or the snapshot the log begins behind) and removes it.
    static func damageMarker(for path: String) -> String { path + ".damaged" }

    /// Whether `error`, or the error it wraps, is SQLite finding the file damaged.
    static func isDamage(_ error: any Error) -> Bool {
        if let error = error as? DatabaseError {
            return error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
        }
        if let error = error as? StoreError, let cause = error.cause { return isDamage(cause) }
        return false
    }

    /// Runs an apply; when SQLite finds the views damaged, leaves the marker for the next open and
    /// throws an error that says so. The log holds everything the views do: nothing is lost.
    func markingDamage<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch  where Self.isDamage(error) {
            throw markDamaged(error)
        }
    }

    /// ``markingDamage(_:)`` for the async apply.
    func markingDamage<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch  where Self.isDamage(error) {
            throw markDamaged(error)
        }
    }

    private func markDamaged(_ error: any Error) -> StoreError {
        let reason = "\(error)"
        let marker = Self.damageMarker(for: path)
        let marked = FileManager.default.createFile(atPath: marker, contents: Data(reason.utf8))
        return StoreError(
            .views,
            "views.sqlite is damaged (\(reason)); "
                + (marked
                    ? "opened again, the views are rebuilt from the log (\(marker) says so)"
                    : "remove \(path) and start again: the views are rebuilt from the log"),
            cause: error)
    }
}
