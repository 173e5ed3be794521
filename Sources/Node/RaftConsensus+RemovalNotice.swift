import Foundation
import Logging
import Replication
import Store

/// A leader's word that this member was removed (``Raft/removalNotice``), kept in
/// `DATA/log/GROUP.removal-notice` (`region.removal-notice`) so that a removed member started
/// again does not campaign, and refuses intents and reads at once, instead of until a leader
/// tells it again. A member whose log shows its removal needs none (the log says so); this is for
/// one removed while away, whose log the leader could no longer bring up to the removal.
extension RaftConsensus {
    /// Logs, once, that a committed membership among `entries` leaves this member out after it
    /// was one (removed with `dwcp cluster remove-member`, as its log shows; a leader's notice to
    /// a member whose log cannot show it is logged by ``noteStatus()``).
    func noteRemoval(committed entries: [LogEntry]) {
        guard let last = entries.last(where: { $0.kind == .membership }),
            let membership = try? RaftMembership(decoding: last.payload), wasMember.load(ordering: .acquiring)
        else { return }
        if membership.contains(nodeID) {
            removalLogged.store(0, ordering: .relaxed)
            return
        }
        guard removalLogged.exchange(last.index, ordering: .relaxed) != last.index else { return }
        // Kept, as a leader's notice is: started again, its log may not show the removal committed.
        Self.keepRemovalNotice(last.index, in: log.path, group: group, logger: logger)
        logger.error(
            "\(group): this member, \(nodeID), was removed from the region (the membership committed at index \(last.index) leaves it out): it stops campaigning, and takes no intents or reads. To bring it back, add it again (dwcp cluster add-member --learner, then promote)"
        )
    }

    static func removalNoticePath(in directory: String, group: String) -> String {
        "\(directory)/\(group).removal-notice"
    }

    /// The notice kept in `directory` (the log's) for `group`, if it is `forThisLog`: a notice
    /// beside a log that never held this member (a new region's first start, a `--join`, a log
    /// made again in an old directory) is not this log's, and goes. One that cannot be read is
    /// logged and ignored: a leader tells the member again at its first pre-vote.
    static func removalNotice(in directory: String, group: String, logger: Logger, forThisLog: Bool) -> UInt64? {
        let path = removalNoticePath(in: directory, group: group)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard forThisLog else {
            logger.warning("removing \(path): its log never held this member, so the notice is not about it")
            discardRemovalNotice(in: directory, group: group, logger: logger)
            return nil
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let index = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)), index > 0
        else {
            logger.warning("ignoring \(path): it holds no log index")
            return nil
        }
        return index
    }

    /// Keeps the notice of a removal at `index` (written whole, then renamed into place). Not
    /// synced: a notice lost in a crash is given again by a leader.
    static func keepRemovalNotice(_ index: UInt64, in directory: String, group: String, logger: Logger) {
        let path = removalNoticePath(in: directory, group: group)
        do {
            try Data("\(index)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.warning("could not keep the removal notice in \(path): \(error)")
        }
    }

    /// Removes the kept notice: a membership that added the member again superseded it.
    static func discardRemovalNotice(in directory: String, group: String, logger: Logger) {
        let path = removalNoticePath(in: directory, group: group)
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            logger.warning("could not remove \(path): \(error)")
        }
    }
}
