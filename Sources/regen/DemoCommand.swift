import ArgumentParser

/// `regen demo` (filled in below).
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Run the end-to-end demo on an embedded cluster.")
    func run() async throws {}
}
