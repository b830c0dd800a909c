import ArgumentParser
import Foundation
import Orchestration
import RdKafka
import RegenService
import Regeneration

/// The `regen` command line. Exit codes: 0 ok, 2 usage or configuration error, 1 runtime failure.
@main
struct Regen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regen",
        abstract: "Turns a Kafka stream of change events into regeneration cycles.",
        discussion: "Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure.",
        subcommands: [RunCommand.self, DemoCommand.self, BrokerCommand.self, ProduceCommand.self, ConfigCommand.self, StateCommand.self]
    )

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    /// Usage and configuration errors exit 2; anything else at run time exits 1.
    static func exit(withError error: any Error) -> Never {
        switch error {
        case is ConfigurationErrors, is ConfigurationLoader.LoadError, TemplateError.manifest:
            FileHandle.standardError.write(Data("configuration error:\n\(error)\n".utf8))
            Foundation.exit(2)
        case let code as ExitCode:
            Foundation.exit(code.rawValue)
        default:
            let exitCode = Self.exitCode(for: error)
            let message = Self.fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            if exitCode.rawValue == 0 { Foundation.exit(0) }  // --help, --version
            // ArgumentParser's usage errors (64) become 2; runtime failures are 1.
            Foundation.exit(exitCode == .validationFailure ? 2 : 1)
        }
    }
}
