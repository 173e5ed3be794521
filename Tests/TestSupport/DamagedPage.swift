import Foundation
import GRDB

/// Overwrites the root page of `table` in the SQLite file at `path` (4 KiB pages) with bytes no
/// page holds, as damage on the disk would: the file still opens, and what reads or writes that
/// table meets the damage.
public func overwriteRootPage(of table: String, inDatabaseAt path: String) throws {
    var readOnly = Configuration()
    readOnly.readonly = true
    let rootPage = try DatabaseQueue(path: path, configuration: readOnly).read { db in
        try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = ?", arguments: [table])!
    }
    let file = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? file.close() }
    try file.seek(toOffset: UInt64((rootPage - 1) * 4096))
    try file.write(contentsOf: [UInt8](repeating: 0x5a, count: 4096))
}
