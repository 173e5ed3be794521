import Foundation
import Logging
import Replication
import Store

extension RaftConsensus {
    /// Where the founding of `group`'s region is kept beside its log (``MemberFounding``): a
    /// member that compacted its first entry away still knows it.
    static func foundingPath(in directory: String, group: String) -> String {
        "\(directory)/\(group).founding"
    }

    /// This member's founding: the digest of its log's first entry's membership when the log holds
    /// it (kept beside the log for later), else the one kept. An empty log (a new region's first
    /// start writes its first entry, a `--join` gets it or a snapshot) drops a kept one: it
    /// belonged to a log this directory held before.
    static func founding(
        in directory: String, group: String, logIsEmpty: Bool, first: LogEntry?, logger: Logger
    ) -> String? {
        let path = foundingPath(in: directory, group: group)
        if logIsEmpty { try? FileManager.default.removeItem(atPath: path) }
        if let first, first.index == 1, first.kind == .membership,
            let membership = try? RaftMembership(decoding: first.payload)
        {
            let digest = MemberFounding.digest(of: membership)
            if (try? String(contentsOfFile: path, encoding: .utf8)) != digest + "\n" {
                do {
                    try Data((digest + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                } catch {
                    logger.warning("could not keep the region's founding in \(path): \(error)")
                }
            }
            return digest
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let digest = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard digest.count == 16, digest.allSatisfy(\.isHexDigit) else {
            logger.warning("ignoring \(path): it holds no founding digest")
            return nil
        }
        return digest
    }
}
