import Logging
import NIOCore
import NIOPosix
import Store

/// Looks at the space left on the filesystem holding the data directory every ``checkEvery``:
/// `dwcp_data_directory_available_bytes` and `dwcp_data_directory_size_bytes` at `/metrics`, and a
/// warning when it runs low (``DiskSpace/isRunningLow``), again every ``warnEvery`` while it stays
/// low, and a notice when there is room again. A member whose disk fills stops (it can neither
/// append to its log nor apply to its views): this is the warning before, which nothing gave.
struct DiskSpaceWatch: Sendable {
    static let checkEvery: Duration = .seconds(10)
    static let warnEvery: Duration = .seconds(600)

    /// What a reading calls for: the watch's decisions, apart from the clock and the disk.
    struct State: Sendable, Equatable {
        /// When the last warning was given, while the space stays low.
        var warnedAt: ContinuousClock.Instant?

        enum Say: Equatable {
            case warn, recovered
        }

        /// Notes `space`, read at `now`; returns what to say, if anything.
        mutating func note(_ space: DiskSpace, at now: ContinuousClock.Instant) -> Say? {
            guard space.isRunningLow else {
                defer { warnedAt = nil }
                return warnedAt == nil ? nil : .recovered
            }
            if let warnedAt, now < warnedAt + DiskSpaceWatch.warnEvery { return nil }
            warnedAt = now
            return .warn
        }
    }

    func run(node: Node) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        let path = node.configuration.dataDirectory
        var state = State()
        while true {
            if let space = DiskSpace.of(path) {
                node.metrics.dataDirectoryAvailable.record(Int64(clamping: space.availableBytes))
                node.metrics.dataDirectorySize.record(Int64(clamping: space.totalBytes))
                switch state.note(space, at: .now) {
                case .warn?:
                    node.logger.warning(
                        "the filesystem holding \(path) is running out of space: \(space.described). When it is full this member stops (it cannot append to its log or apply to its views; nothing is lost): free space there, or move the data directory to a larger disk"
                    )
                case .recovered?:
                    node.logger.notice("the filesystem holding \(path) has room again: \(space.described)")
                case nil:
                    break
                }
            }
            try await loop.sleep(for: Self.checkEvery)
        }
    }
}
