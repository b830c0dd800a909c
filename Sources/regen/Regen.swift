import ArgumentParser

/// The `regen` command line.
@main
struct Regen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regen",
        abstract: "Turns a Kafka stream of change events into regeneration cycles.",
        subcommands: [BrokerCommand.self]
    )
}
