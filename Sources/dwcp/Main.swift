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
            let message = Dwcp.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("dwcp: \(message) (see 'dwcp help')\n".utf8))
            exit(code == .validationFailure ? 64 : code.rawValue)
        }
    }
}
