import ArgumentParser
import Foundation
import RegenService
import Regeneration

/// `regen state export`.
struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state", abstract: "Look at the template processor's subject store.", subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Print the subject store (OUTPUT/.regen/state.sqlite) as JSON, keys sorted.",
            discussion: """
                Every subject with its properties, edges, last change and the offset of the last \
                event applied per input partition, and every removed subject's offsets. Safe while \
                regen runs. The output directory is --output, else processor.template.output of \
                the configuration.
                """)

        @Argument(help: "The configuration file (YAML or JSON).")
        var file: String?

        @Option(help: "The template processor's output directory (instead of the configuration's).")
        var output: String?

        @Option(name: .customLong("set"), help: "Override one setting, as path=value. Repeatable.")
        var overrides: [String] = []

        func run() async throws {
            let directory = try output ?? ConfigurationLoader().load(file: file, overrides: overrides).processor.template.output
            FileHandle.standardOutput.write(try TemplateProcessor.exportState(outputDirectory: directory))
            FileHandle.standardOutput.write(Data("\n".utf8))
        }
    }
}
