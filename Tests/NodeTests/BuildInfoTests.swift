import ChildProcess
import Foundation
import Node
import TestSupport
import Testing

@Suite struct BuildInfoTests {
    @Test("the version is the release and the commit the package was built at")
    func versionNamesTheCommit() async throws {
        let parts = Node.version.split(separator: "+")
        #expect(parts.count == 2 && parts[0] == "0.1.0", "\(Node.version)")
        let commit = String(parts.last ?? "")
        guard commit != "unknown" else {
            print("skipped the comparison with git: this build found no git checkout to read its commit from")
            return
        }
        #expect(commit.count == 12 && commit.allSatisfy(\.isHexDigit), "\(commit)")
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/git") else {
            print("skipped the comparison with git: no /usr/bin/git here")
            return
        }
        guard let git = try? await runToEnd("/usr/bin/git", ["-C", package.path, "rev-parse", "HEAD"]) else {
            print("skipped the comparison with git: /usr/bin/git did not start")
            return
        }
        let head = git.output
        guard git.status == 0 else {
            print("skipped the comparison with git: git cannot read \(package.path)")
            return
        }
        #expect(commit == String(head.prefix(12)), "built at \(commit), HEAD is \(head)")
    }
}
