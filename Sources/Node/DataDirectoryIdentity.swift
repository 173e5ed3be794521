import Foundation
import Logging

/// Whom a data directory belongs to: the node id, the region, and whether its log is a replicated
/// region's or a single node's. Written to `DATA/identity.json` at the directory's first start
/// and checked at every later one, so a directory started by mistake under another id or region,
/// or in the other mode, stops with a clear error instead of doing harm: under another id it
/// would vote with the votes of a member it is not; a region member's log run as a single node
/// (`dwcp dev`, or `serve` without `--listen`) would commit entries alone, at indexes and terms
/// the region's leader gives to other entries, and its views would part from the region's for good.
struct DataDirectoryIdentity: Codable, Equatable, Sendable {
    var nodeID: String
    var region: String
    /// A member of a replicated region (`serve --listen`), not a single node.
    var replicated: Bool

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id"
        case region
        case replicated
    }

    static let fileName = "identity.json"

    init(nodeID: String, region: String, replicated: Bool) {
        self.nodeID = nodeID
        self.region = region
        self.replicated = replicated
    }

    /// The identity `configuration` starts a node with.
    init(_ configuration: NodeConfiguration) {
        nodeID = configuration.nodeID
        region = configuration.region
        replicated = configuration.replication != nil
    }

    /// An identity to record once the start has passed its other checks, and the line to log then.
    struct Pending: Sendable {
        var identity: DataDirectoryIdentity
        var note: String
        /// Recorded for a log that already holds entries (a directory from before identities).
        var logHeldEntries: Bool
    }

    /// Checks `configuration` against the identity its data directory records. Returns the
    /// identity to record when there is none (a new directory, or one from before identities were
    /// recorded, which is taken to be this node's) or the log is still empty (`logIsEmpty`: a
    /// first start that was wrong, or failed, ties nothing down); the caller records it with
    /// ``record(_:in:logger:)`` only once the start's other checks have passed, so that a start
    /// refused for another reason leaves the directory as it was. Throws when they differ, or the
    /// file cannot be read, or is empty while the log holds entries (a file written atomically is
    /// never left empty by a crash: it was damaged).
    static func check(_ configuration: NodeConfiguration, logIsEmpty: Bool) throws -> Pending? {
        let path = configuration.dataDirectory + "/" + fileName
        let starting = DataDirectoryIdentity(configuration)
        let data = try read(path)
        guard let data, !data.isEmpty else {
            if data != nil && !logIsEmpty {
                throw NodeError(
                    .invalid,
                    "\(path) is empty, but the log holds entries: it names the node this directory belongs to; restore it, or remove it to have this start's node id and region recorded"
                )
            }
            return Pending(
                identity: starting, note: "recorded in \(path): this directory belongs to \(starting.described)",
                logHeldEntries: !logIsEmpty)
        }
        let recorded: DataDirectoryIdentity
        do {
            recorded = try JSONDecoder().decode(DataDirectoryIdentity.self, from: data)
        } catch {
            throw NodeError(
                .invalid,
                "\(path) is damaged (\(error)): it names the node this directory belongs to; restore it, or remove it to have this start's node id and region recorded",
                cause: error)
        }
        guard let mismatch = recorded.mismatch(starting, directory: configuration.dataDirectory) else { return nil }
        guard logIsEmpty else { throw NodeError(.invalid, mismatch) }
        return Pending(
            identity: starting,
            note: "\(path) named \(recorded.described), but the log is empty: it now names \(starting.described)",
            logHeldEntries: false)
    }

    /// Records `pending` in `directory`.
    static func record(_ pending: Pending, in directory: String, logger: Logger) throws {
        try record(pending.identity, at: directory + "/" + fileName)
        logger.notice("\(pending.note)")
    }

    /// The file's bytes; nil when it does not exist. Any other failure to read it is an error:
    /// a file that cannot be read must not be taken for a missing one and replaced.
    private static func read(_ path: String) throws -> Data? {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch CocoaError.fileReadNoSuchFile {
            return nil
        } catch {
            throw NodeError(.unavailable, "cannot read \(path): \(error.localizedDescription)", cause: error)
        }
    }

    /// Why a node started as `starting` must not use a directory that records `self`; nil when it may.
    private func mismatch(_ starting: DataDirectoryIdentity, directory: String) -> String? {
        let mode = described
        // The mode first: `dwcp dev` over a member's directory differs in its id too, and has no --node-id.
        if replicated && !starting.replicated {
            return
                "\(directory) holds the log of \(mode): started without --listen (or as dwcp dev) it would commit entries alone that the region never sees; start it with --listen and its peers"
        }
        if !replicated && starting.replicated {
            return
                "\(directory) holds the log of \(mode), written without --listen: it cannot become a region's member; give the member an empty data directory"
        }
        guard nodeID != starting.nodeID || region != starting.region else { return nil }
        return
            "\(directory) belongs to \(mode), not to \(starting.nodeID) of region \(starting.region): start it with dwcp serve --node-id \(nodeID) --region \(region), or give this node a data directory of its own"
    }

    /// "member n1 of region eu", or "single node dev (region local)".
    var described: String {
        replicated ? "member \(nodeID) of region \(region)" : "single node \(nodeID) (region \(region))"
    }

    private static func record(_ identity: DataDirectoryIdentity, at path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(identity).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw NodeError(
                .unavailable, "cannot record the data directory's identity in \(path): \(error)", cause: error)
        }
    }
}
