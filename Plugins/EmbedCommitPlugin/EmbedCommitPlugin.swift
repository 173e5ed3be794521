import Foundation
import PackagePlugin

/// Build-tool plugin that embeds the git commit the package is at into the `BuildInfo` target.
/// Its inputs are the files that name the commit (HEAD, its reflog, the branch's ref, the packed
/// refs), so a new commit or a checkout of another one runs it again.
@main
struct EmbedCommitPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let (head, refs) = Self.gitDirectories(package: context.package.directoryURL.path())
        // HEAD's reflog too: every commit, checkout or reset appends to it, even after the build
        // plan (and so this list) was made on another branch.
        var inputs = [head + "/HEAD", head + "/logs/HEAD", refs + "/packed-refs"]
        if let text = Self.read(head + "/HEAD"), text.hasPrefix("ref: ") {
            inputs.append(refs + "/" + text.dropFirst("ref: ".count))
        }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedCommit.swift")
        return [
            .buildCommand(
                displayName: "Embedding the git commit",
                executable: try context.tool(named: "CommitEmbedder").url,
                arguments: [output.path(), head, refs],
                inputFiles: inputs.filter { FileManager.default.fileExists(atPath: $0) }.map {
                    URL(fileURLWithPath: $0)
                },
                outputFiles: [output]
            )
        ]
    }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The directory holding HEAD, and the one holding the refs: `.git` itself, or, where `.git`
    /// is a file (a worktree, a submodule), the directory it names and that one's `commondir`.
    static func gitDirectories(package: String) -> (head: String, refs: String) {
        let root = package.hasSuffix("/") ? String(package.dropLast()) : package
        let dotGit = root + "/.git"
        guard let pointer = read(dotGit), pointer.hasPrefix("gitdir: ") else { return (dotGit, dotGit) }
        var head = String(pointer.dropFirst("gitdir: ".count))
        if !head.hasPrefix("/") { head = root + "/" + head }
        guard let common = read(head + "/commondir") else { return (head, head) }
        return (head, common.hasPrefix("/") ? common : head + "/" + common)
    }
}
