import ArgumentParser
import Foundation

/// Entry point: parse, run, and turn any failure into one line on stderr with a non-zero status.
@main
enum Main {
    static func main() async {
        do {
            if let unknown = unknownHelpTopic(Array(CommandLine.arguments.dropFirst())) {
                throw CLIError(.usage, "no command '\(unknown)' to help with (see 'dwcp help')")
            }
            var command = try Dwcp.parseAsRoot()
            try RepeatedOptions.check(type(of: command), arguments: Array(CommandLine.arguments.dropFirst()))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            StandardStream.error.write("dwcp: \(withRequestID(error.message))\n")
            exit(error.code == .usage ? 64 : error.code == .differs ? 2 : 1)
        } catch {
            let code = Dwcp.exitCode(for: error)
            let arguments = Array(CommandLine.arguments.dropFirst())
            if code == .success {
                // A group without one of its commands (`dwcp`, `dwcp vm`): its help, as a refusal,
                // so a script whose command word came out empty does not go on as if it had run.
                if let group = missingCommand(arguments) {
                    StandardStream.error.write(Dwcp.fullMessage(for: error) + "\n\n")
                    StandardStream.error.write(
                        "dwcp: \(group.words.joined(separator: " ")) needs a command: \(group.subcommands.joined(separator: ", "))\n"
                    )
                    exit(64)
                }
                Dwcp.exit(withError: error)  // --help, --version: full text, exit 0
            }
            let found = commandPath(arguments)
            let path = found.words
            // (Only when no option comes before the word, or ArgumentParser's own message names
            // it: a word after an option may be that option's value, not a command.)
            if let unknown = found.unknown, !found.subcommands.isEmpty,
                found.unknownBeforeOptions || Dwcp.message(for: error).contains("'\(unknown)'")
            {
                let names = found.subcommands.joined(separator: ", ")
                StandardStream.error.write(
                    "dwcp: unknown command '\(unknown)': \(path.joined(separator: " ")) takes \(names) (see '\(path.joined(separator: " ")) --help')\n"
                )
                exit(64)
            }
            let message = usageMessage(for: error)
            // The help of the command that was run, which says what it takes.
            let help = path.count > 1 ? "\(path.joined(separator: " ")) --help" : "dwcp help"
            StandardStream.error.write("dwcp: \(message) (see '\(help)')\n")
            exit(code == .validationFailure ? 64 : code.rawValue)
        }
    }

    /// A refusal that says to retry with the same request id, naming the one this process made
    /// up (`--request-id` given: the user knows it).
    static func withRequestID(_ message: String) -> String {
        guard message.hasSuffix("with the same request id"), IntentOptions.madeUpIDUsed.load(ordering: .relaxed)
        else { return message }
        return message + " (--request-id \(IntentOptions.madeUpID))"
    }

    /// `dwcp help a b`: the words that name no command (ArgumentParser prints the top-level help
    /// for them and exits 0, as if they had been found); nil when they all do, or for anything
    /// but `help`.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help", arguments.count > 1 else { return nil }
        var command: any ParsableCommand.Type = Dwcp.self
        for (position, word) in arguments.dropFirst().enumerated() where !word.hasPrefix("-") {
            guard let sub = command.configuration.subcommands.first(where: { $0._commandName == word }) else {
                return arguments.dropFirst().prefix(position + 1).joined(separator: " ")
            }
            command = sub
        }
        return nil
    }

    /// The command `arguments` name: its words from `dwcp` on, the commands it takes when it is a
    /// group (`dwcp vm`), and the first word after a group that names none of them (`dwcp vm
    /// nosuch`: `nosuch`). Options are passed over; a command without subcommands ends the walk.
    struct CommandPath {
        var words = ["dwcp"]
        var subcommands: [String] = []
        var unknown: String?
        /// Whether no option came before ``unknown`` (`dwcp nosuch --server X`): it stands where a
        /// command goes, and cannot be an option's value.
        var unknownBeforeOptions = false
    }

    /// The group a command line names without one of its commands (`dwcp`, `dwcp vm`); nil when
    /// it names a command, or asks for help or the version.
    static func missingCommand(_ arguments: [String]) -> CommandPath? {
        let asks = ["-h", "--help", "-help", "help", "--version"]
        guard !arguments.contains(where: asks.contains) else { return nil }
        let found = commandPath(arguments)
        return !found.subcommands.isEmpty && found.unknown == nil ? found : nil
    }

    static func commandPath(_ arguments: [String]) -> CommandPath {
        var found = CommandPath()
        var subcommands = Dwcp.configuration.subcommands
        var sawOption = false
        for word in arguments {
            if word.hasPrefix("-") {
                sawOption = true
                continue
            }
            guard !subcommands.isEmpty else { break }
            guard let sub = subcommands.first(where: { $0._commandName == word }) else {
                found.unknown = word
                found.unknownBeforeOptions = !sawOption
                break
            }
            found.words.append(word)
            subcommands = sub.configuration.subcommands
        }
        found.subcommands = subcommands.map { $0._commandName }
        return found
    }

    /// The one line printed for a command line ArgumentParser refused.
    static func usageMessage(for error: any Error, arguments: [String] = Array(CommandLine.arguments.dropFirst()))
        -> String
    {
        let message = Dwcp.message(for: error)
        // (A dashed argument first: an SQL comment would otherwise be reported as an unknown option.)
        return negativeValue(message, arguments: arguments) ?? dashedArgument(message, arguments: arguments)
            ?? unknownOptionHiddenBehind(message, arguments: arguments) ?? oneLine(message) ?? "\(error)"
    }

    /// ArgumentParser takes an argument that starts with '-' for an option, so a query that opens
    /// with an SQL comment (`-- note`) or a negative number (`-1 + 2`) reads as missing ("Missing
    /// expected argument '<query>'"): said plainly, with the `--` that ends the options.
    static func dashedArgument(_ message: String, arguments: [String]) -> String? {
        let prefix = "Missing expected argument '<"
        guard message.hasPrefix(prefix), !arguments.contains("--") else { return nil }
        let name = message.dropFirst(prefix.count).prefix { $0 != ">" }
        let dashed = arguments.first { argument in
            guard argument.count > 1, argument.first == "-" else { return false }
            let second = argument.dropFirst().first!
            return argument.contains(where: \.isWhitespace) || second.isNumber || second == "."
                || (second == "-" && argument.dropFirst(2).first?.isLetter != true)
        }
        guard let dashed, let at = arguments.firstIndex(of: dashed) else { return nil }
        let shown = dashed.count > 24 ? dashed.prefix(24) + "…" : Substring(dashed)
        let before = arguments[..<at].joined(separator: " ")
        return
            "<\(name)> '\(shown.replacingOccurrences(of: "\n", with: " "))' starts with '-' and reads as an option: put -- before it, and any options before the -- (dwcp \(before) -- '…')"
    }

    /// ArgumentParser takes `-1` after an option for another option, and reports the option's
    /// value as missing ("Missing value for '--cpus <cpus>'"): said plainly instead (no option
    /// takes a negative number; a text value such as a request id can be given as `--opt=-5`).
    static func negativeValue(_ message: String, arguments: [String]) -> String? {
        guard let option = option(in: message, after: "Missing value for '"),
            let at = arguments.firstIndex(of: option), at + 1 < arguments.count
        else { return nil }
        let value = arguments[at + 1]
        guard value.count > 1, value.first == "-", value.dropFirst().first?.isNumber == true else { return nil }
        return
            "\(option) \(value): a value that starts with '-' reads as another option; no number here may be negative (a text value that starts with '-' goes as \(option)=\(value))"
    }

    /// ArgumentParser reports a missing required option or argument before an unknown option, so
    /// a mistyped required flag (`--data-dri`) reads as a missing one ("Missing expected argument
    /// '--data-dir <data-dir>'"), and `dwcp host add --bogus` as a missing name. When the error
    /// is a missing option or argument, the arguments are parsed again with a placeholder for each
    /// (at most a few): if that finds an unknown option, its message (with ArgumentParser's "Did
    /// you mean" suggestion) is the one that helps. Nothing is run; any other outcome keeps the
    /// first message.
    static func unknownOptionHiddenBehind(_ message: String, arguments: [String]) -> String? {
        var message = message
        var arguments = arguments
        for _ in 0..<8 {
            if let option = option(in: message, after: "Missing expected argument '") {
                arguments += [option, "1"]
            } else if message.hasPrefix("Missing expected argument '<") {
                arguments.append("1")
            } else {
                return nil
            }
            do {
                _ = try Dwcp.parseAsRoot(arguments)
                return nil
            } catch {
                message = Dwcp.message(for: error)
                if message.hasPrefix("Unknown option ") { return oneLine(message) }
            }
        }
        return nil
    }

    /// The option an ArgumentParser message names right after `prefix` ("Missing expected
    /// argument '--name <value>'" gives `--name`); nil for another message, or when what follows
    /// is no option (a positional argument, `<member>`).
    static func option(in message: String, after prefix: String) -> String? {
        guard message.hasPrefix(prefix) else { return nil }
        let name = message.dropFirst(prefix.count).prefix { $0 != " " && $0 != "'" }
        return name.hasPrefix("--") ? String(name) : nil
    }

    /// ArgumentParser's message as one line: its first, and the values it lists under "one of
    /// the following:" (an option whose value is not one of them), joined.
    static func oneLine(_ message: String) -> String? {
        let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = lines.first else { return nil }
        guard first.hasSuffix("one of the following:") else { return first }
        let values = lines.dropFirst().filter { $0.hasPrefix("- ") }.map { $0.dropFirst(2) }
        return first + " " + values.joined(separator: ", ")
    }
}
