import ArgumentParser
import Foundation
import Logging
import RegenService
import ServiceLifecycle

/// `regen run`: the service.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Consume change events and run regeneration cycles until SIGTERM or SIGINT.",
        discussion: """
            Configuration comes from --config (YAML or JSON), then REGEN_* environment variables \
            (REGEN_KAFKA__BOOTSTRAP_SERVERS=host:9092 sets kafka.bootstrapServers), then --set \
            flags. The first SIGTERM or SIGINT stops fetching, finishes the cycles in flight \
            (at most service.shutdownTimeoutMs), commits, leaves the group and flushes; a second \
            one exits at once.
            """)

    @Option(name: .shortAndLong, help: "The configuration file (YAML or JSON).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one setting, as path=value. Repeatable.")
    var overrides: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let configuration = try ConfigurationLoader().load(file: config, overrides: overrides)
        let logger = makeLogger(label: "regen", level: logLevel)
        for warning in configuration.warnings { logger.warning("configuration: \(warning)") }
        let service = try await RegenService(configuration: configuration, logger: logger)
        exitOnSecondSignal()
        var groupConfiguration = ServiceGroupConfiguration(
            services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(configuration.service.shutdownTimeoutMs) + .seconds(30)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// A logger writing to standard error at `level`.
func makeLogger(label: String, level: Logger.Level) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = level
    return logger
}

/// The first SIGTERM/SIGINT is ServiceLifecycle's graceful shutdown; the second ends the process at once.
func exitOnSecondSignal() {
    let counter = SignalCounter()
    for number in [SIGTERM, SIGINT] {
        signal(number, SIG_IGN)  // delivered to the dispatch sources only
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            if counter.increment() >= 2 {
                FileHandle.standardError.write(Data("second signal: exiting now\n".utf8))
                _exit(130)
            }
        }
        source.resume()
        counter.keep(source)
    }
}

private final class SignalCounter: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var count = 0
    private var sources: [any DispatchSourceSignal] = []
    func increment() -> Int { lock.withLock { count += 1; return count } }
    func keep(_ source: any DispatchSourceSignal) { lock.withLock { sources.append(source) } }
}
