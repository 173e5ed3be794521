import Foundation

/// A fresh directory under the system's temporary directory, removed when the test is done with it
/// (kept, for a look at the nodes' logs, when `DWCP_KEEP_TEST_DIRS` is set).
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ name: String = "dwcp-test") {
        path = NSTemporaryDirectory() + "\(name)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        guard ProcessInfo.processInfo.environment["DWCP_KEEP_TEST_DIRS"] == nil else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    public func file(_ name: String) -> String { path + "/" + name }
}
