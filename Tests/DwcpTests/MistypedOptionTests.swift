import Testing

@testable import dwcp

@Suite struct MistypedOptionTests {
    /// What the CLI prints for `arguments`: the message `Main` writes after "dwcp: ".
    func message(_ arguments: [String]) -> String? {
        do {
            _ = try Dwcp.parseAsRoot(arguments)
            return nil
        } catch {
            return Main.usageMessage(for: error, arguments: arguments)
        }
    }

    @Test("a mistyped required option is reported as unknown, with the suggestion, not as the one missing")
    func mistypedRequiredOption() {
        let said = message(["serve", "--data-dri", "/tmp/x", "--node-id", "n1"])
        #expect(said == "Unknown option '--data-dri'. Did you mean '--data-dir'?", "\(String(describing: said))")
        // Two required options missing, one of them mistyped.
        let both = message(["serve", "--nod-id", "n1"])
        #expect(both?.hasPrefix("Unknown option '--nod-id'") == true, "\(String(describing: both))")
    }

    @Test("an unknown option is reported as one where a required argument is missing too")
    func unknownOptionBeforeMissingArgument() {
        // ArgumentParser's own message was "Missing expected argument '<name>'".
        let said = message(["host", "add", "--bogus"])
        #expect(said?.hasPrefix("Unknown option '--bogus'") == true, "\(String(describing: said))")
        let mistyped = message(["host", "add", "--cpu", "4", "--memory", "1GiB"])
        #expect(mistyped == "Unknown option '--cpu'. Did you mean '--cpus'?", "\(String(describing: mistyped))")
        // Simply missing, it is still said so.
        #expect(message(["host", "add", "--cpus", "4", "--memory", "1GiB"]) == "Missing expected argument '<name>'")
    }

    @Test("host label needs its labels, or --clear to remove them all (no --label cleared them without a word)")
    func hostLabelNeedsLabelsOrClear() {
        #expect(message(["host", "label", "h1"])?.contains("or --clear to remove them all") == true)
        #expect(
            message(["host", "label", "h1", "--clear", "--label", "a=b"])?.contains("give it without --label") == true)
        #expect(message(["host", "label", "h1", "--clear"]) == nil)
        #expect(message(["host", "label", "h1", "--label", "a=b"]) == nil)
    }

    @Test("a required option that is simply missing is still reported as missing")
    func missingRequiredOption() {
        let said = message(["serve", "--node-id", "n1"])
        #expect(said?.hasPrefix("Missing expected argument '--data-dir") == true, "\(String(describing: said))")
        #expect(
            Main.option(in: "Missing expected argument '--data-dir <data-dir>'", after: "Missing expected argument '")
                == "--data-dir")
        #expect(Main.option(in: "Missing expected argument '<member>'", after: "Missing expected argument '") == nil)
    }

    @Test("a negative number after an option is reported as one, not as a missing value")
    func negativeValues() {
        let cpus = message(["host", "add", "h1", "--cpus", "-1", "--memory", "1GiB"])
        #expect(
            cpus?.hasPrefix("--cpus -1: a value that starts with '-' reads as another option") == true, "\(cpus ?? "")")
        #expect(message(["watch", "--from-index", "-1"])?.contains("goes as --from-index=-1") == true)
        // Given so, a text value that starts with '-' is taken.
        #expect(message(["host", "remove", "h1", "--request-id=-5"]) == nil)
        #expect(
            message(["host", "add", "h1", "--memory", "1GiB", "--cpus"])?.hasPrefix("Missing value for '--cpus") == true
        )
    }

    @Test("a query that starts with '-' (an SQL comment, a negative number) is told to follow --")
    func dashedQuery() {
        for query in ["-- note\nSELECT 1", "-1 + 2", "-1"] {
            let said = message(["sql", query])
            #expect(
                said?.contains("<query> '") == true && said?.contains("starts with '-' and reads as an option") == true
                    && said?.contains("(dwcp sql -- '…')") == true, "\(said ?? "nil")")
        }
        #expect(message(["sql", "--", "-- note\nSELECT 1"]) == nil)
        #expect(message(["sql"])?.contains("starts with '-'") == false)
    }

    @Test("dwcp help with a word that names no command says so; with real ones it is left to ArgumentParser")
    func helpTopics() {
        #expect(Main.unknownHelpTopic(["help", "nosuch"]) == "nosuch")
        #expect(Main.unknownHelpTopic(["help", "cluster", "stauts"]) == "cluster stauts")
        #expect(Main.unknownHelpTopic(["help", "cluster", "status"]) == nil)
        #expect(Main.unknownHelpTopic(["help"]) == nil)
        #expect(Main.unknownHelpTopic(["sql", "help"]) == nil)
    }

    @Test("a word that names no command of a group is called an unknown command; a command's own help is named")
    func commandPaths() {
        let unknown = Main.commandPath(["vm", "nosuch", "x"])
        #expect(unknown.words == ["dwcp", "vm"] && unknown.unknown == "nosuch")
        #expect(unknown.subcommands.contains("create") && unknown.subcommands.contains("console"))
        let top = Main.commandPath(["nosuch"])
        #expect(top.words == ["dwcp"] && top.unknown == "nosuch" && top.subcommands.contains("serve"))
        // A command's own arguments are not taken for commands, options are passed over.
        let leaf = Main.commandPath(["host", "label", "--label", "a=b", "h1", "a=b"])
        #expect(leaf.words == ["dwcp", "host", "label"] && leaf.unknown == nil && leaf.subcommands.isEmpty)
        let sql = Main.commandPath(["sql", "SELECT 1", "--format", "csv"])
        #expect(sql.words == ["dwcp", "sql"] && sql.unknown == nil)
    }

    @Test("a group named without one of its commands is refused (dwcp, dwcp vm); asked for help, it is not")
    func missingCommands() {
        #expect(Main.missingCommand([])?.words == ["dwcp"])
        let vm = Main.missingCommand(["vm"])
        #expect(vm?.words == ["dwcp", "vm"] && vm?.subcommands.contains("create") == true)
        #expect(Main.missingCommand(["cluster"])?.words == ["dwcp", "cluster"])
        for asked in [["--help"], ["vm", "--help"], ["vm", "-h"], ["help", "vm"], ["--version"]] {
            #expect(Main.missingCommand(asked) == nil, "\(asked)")
        }
        for named in [["vm", "list"], ["sql", "SELECT 1"], ["vm", "nosuch"], ["status"]] {
            #expect(Main.missingCommand(named) == nil, "\(named)")
        }
    }
}
