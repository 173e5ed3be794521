import Foundation
import Logging

/// A leader's word that this member was removed (``Raft/removalNotice``), kept in
/// `DATA/log/removal-notice` so that a removed member started again does not campaign, and
/// refuses intents and reads at once, instead of until a leader tells it again. A member whose
/// log shows its removal needs none (the log says so); this is for one removed while away, whose
/// log the leader could no longer bring up to the removal.
extension RaftConsensus {
    static let removalNoticeFile = "removal-notice"

    /// The notice kept in `directory` (the log's), or nil; one that cannot be read is logged and
    /// ignored (a leader tells the member again within a few heartbeats of its campaign).
    static func readRemovalNotice(in directory: String, logger: Logger) -> UInt64? {
        let path = directory + "/" + removalNoticeFile
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let index = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)), index > 0
        else {
            logger.warning("ignoring \(path): it holds no log index")
            return nil
        }
        return index
    }

    /// Keeps the notice of a removal at `index` in `directory` (written whole, then renamed into
    /// place). Not synced: a notice lost in a crash is given again by a leader. A later membership
    /// that adds the member again supersedes it (``Raft/isToldRemoved``), so it is never removed.
    static func keepRemovalNotice(_ index: UInt64, in directory: String, logger: Logger) {
        let path = directory + "/" + removalNoticeFile
        do {
            try Data("\(index)\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.warning("could not keep the removal notice in \(path): \(error)")
        }
    }
}
