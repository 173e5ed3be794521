import Foundation
import PackagePlugin

/// Build-tool plugin that compiles the guests in `guests/` with the toolchain's clang and lld and
/// embeds the resulting ELF images into the `Hypervisor` target, so `builtin:NAME` images always
/// match the source they were built from and no binary is ever committed.
@main
struct BuildGuestsPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let sourceDirectory = context.package.directoryURL.appending(path: "guests")
        let inputs = try FileManager.default.contentsOfDirectory(at: sourceDirectory, includingPropertiesForKeys: nil)
            .filter { ["c", "S", "h", "ld"].contains($0.pathExtension) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltGuests.swift")
        let work = context.pluginWorkDirectoryURL.appending(path: "objects")
        // The toolchain's clang and ld.lld when the plugin context knows them, else found on PATH.
        let clang = (try? context.tool(named: "clang").url.path()) ?? "clang"
        let lld = (try? context.tool(named: "ld.lld").url.path()) ?? "ld.lld"
        return [
            .buildCommand(
                displayName: "Building guest images from guests/",
                executable: try context.tool(named: "GuestBuilder").url,
                arguments: [clang, lld, sourceDirectory.path(), work.path(), output.path()],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
