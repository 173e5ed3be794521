import Foundation
import PackagePlugin

/// Build-tool plugin that embeds the git commit the package is at into the `BuildInfo` target.
/// Its inputs are the files that name the commit (`.git/HEAD`, the branch's ref), so a new commit
/// or a checkout of another one runs it again.
@main
struct EmbedCommitPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let package = context.package.directoryURL
        let git = package.appending(path: ".git")
        var inputs = [git.appending(path: "HEAD"), git.appending(path: "packed-refs")]
        if let head = try? String(contentsOf: git.appending(path: "HEAD"), encoding: .utf8), head.hasPrefix("ref: ") {
            let ref = head.dropFirst("ref: ".count).trimmingCharacters(in: .whitespacesAndNewlines)
            inputs.append(git.appending(path: ref))
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedCommit.swift")
        return [
            .buildCommand(
                displayName: "Embedding the git commit",
                executable: try context.tool(named: "CommitEmbedder").url,
                arguments: [output.path(), package.path()],
                inputFiles: inputs.filter { FileManager.default.fileExists(atPath: $0.path()) },
                outputFiles: [output]
            )
        ]
    }
}
