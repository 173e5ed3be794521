import Foundation
import Synchronization

/// Held while a ``LogStore`` of one log (its directory and group) is open in this process: by its
/// writer thread, until the thread ends (after ``LogStore/close()``, or once the store is gone). A
/// second store of the same log waits for it to go, so it never opens the files while the writer
/// of an earlier one may still write to them.
///
/// A store whose last reference drops on its own writer thread (the thread holds it while it
/// writes) is taken down there, beside whatever opens the log next; its writer may still be
/// checkpointing the journal into LMDB as the new store replays that journal, and the replay then
/// meets entries it did not expect (`MDB_KEYEXIST`, seen in a test that reopened its log at once).
/// `dwcp serve` opens its log once (under `DATA/lock`); tests reopen theirs.
final class OpenLogClaim: Sendable {
    private static let held = Mutex<Set<String>>([])
    let key: String

    /// Claims the log at `path` of `group`, waiting up to `patience` for an earlier store of it in
    /// this process to close.
    init(path: String, group: String, patience: Duration = .seconds(10)) throws {
        key = URL(fileURLWithPath: path).standardizedFileURL.path + " (\(group))"
        let deadline = ContinuousClock.now + patience
        while !Self.held.withLock({ $0.insert(key).inserted }) {
            guard ContinuousClock.now < deadline else {
                throw StoreError(
                    .closed, "the log at \(path) (group \(group)) is still open in this process after \(patience)")
            }
            usleep(1_000)
        }
    }

    deinit {
        _ = Self.held.withLock { $0.remove(key) }
    }
}
