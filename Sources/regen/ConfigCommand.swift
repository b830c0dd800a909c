import ArgumentParser
import Foundation
import RegenService

/// `regen config check FILE`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with configuration files.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Print the effective configuration (file, then REGEN_* environment, then --set), secrets redacted.",
            discussion: "Exits 2 and lists every field at fault when the configuration is invalid.")

        @Argument(help: "The configuration file (YAML or JSON).")
        var file: String?

        @Option(name: .customLong("set"), help: "Override one setting, as path=value (e.g. kafka.groupId=regen-2). Repeatable.")
        var overrides: [String] = []

        func run() async throws {
            let configuration = try ConfigurationLoader().load(file: file, overrides: overrides)
            for warning in configuration.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            print(try configuration.redactedJSON())
        }
    }
}
