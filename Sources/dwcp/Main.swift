import ArgumentParser
import Foundation

/// Entry point: parse, run, and turn any failure into one line on stderr with a non-zero status.
@main
enum Main {
    static func main() async {
        do {
            var command = try Dwcp.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("dwcp: \(error.message)\n".utf8))
            exit(error.code == .usage ? 64 : 1)
        } catch {
            let code = Dwcp.exitCode(for: error)
            if code == .success {
                Dwcp.exit(withError: error)  // --help, --version: full text, exit 0
            }
            let message = oneLine(Dwcp.message(for: error)) ?? "\(error)"
            FileHandle.standardError.write(Data("dwcp: \(message) (see 'dwcp help')\n".utf8))
            exit(code == .validationFailure ? 64 : code.rawValue)
        }
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
