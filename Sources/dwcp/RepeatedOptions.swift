import ArgumentParser
import Store

/// A command-line option given twice where it takes one value (`--cpus 16 --cpus 8`):
/// ArgumentParser keeps the last one without a word, as a JSON decoder keeps one of a key given
/// twice; the CLI refuses it, as the API refuses such a body. Options that take several values
/// (`--label`, `--peer`) may be repeated, flags too (saying one twice changes nothing).
enum RepeatedOptions {
    /// Throws a usage error for the first single-valued option of `command` that `arguments`
    /// give twice (before a `--`).
    static func check(_ command: any ParsableCommand.Type, arguments: [String]) throws {
        var seen: [String: String] = [:]
        var repeated: [(name: String, first: String, second: String)] = []
        var position = 0
        while position < arguments.count, arguments[position] != "--" {
            let word = arguments[position]
            position += 1
            guard word.hasPrefix("--"), word.count > 2 else { continue }
            let parts = word.dropFirst(2).split(separator: "=", maxSplits: 1)
            let name = String(parts[0])
            let value =
                parts.count > 1
                ? String(parts[1]) : (position < arguments.count ? arguments[position] : "")
            if let first = seen[name] {
                repeated.append((name, first, value))
            } else {
                seen[name] = value
            }
        }
        guard !repeated.isEmpty else { return }
        let single = singleValuedOptions(of: command)
        if let twice = repeated.first(where: { single.contains($0.name) }) {
            throw CLIError(
                .usage,
                "--\(twice.name) is given twice ('\(twice.first)', then '\(twice.second)'): it takes one value, give it once"
            )
        }
    }

    /// The long names of `command`'s options that take one value, from ArgumentParser's own
    /// description of the command.
    static func singleValuedOptions(of command: any ParsableCommand.Type) -> Set<String> {
        guard let dump = try? JSONValue.parse(command._dumpHelp()),
            case .array(let arguments)? = dump["command"]?["arguments"]
        else { return [] }
        var names: Set<String> = []
        for argument in arguments
        where argument["kind"]?.stringValue == "option" && argument["isRepeating"] != .bool(true) {
            guard case .array(let spellings)? = argument["names"] else { continue }
            for spelling in spellings where spelling["kind"]?.stringValue == "long" {
                if let name = spelling["name"]?.stringValue { names.insert(name) }
            }
        }
        return names
    }
}
