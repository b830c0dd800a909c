import ArgumentParser
import Foundation
import Logging
import Metrics
import Prometheus
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
            one exits at once (status 130). Exit status 1 means a runtime failure (the reason is \
            logged), 2 a usage or configuration error.

            Unless service.http.enabled is false, HTTP endpoints are served at \
            service.http.address (127.0.0.1:9464 by default): /healthz (liveness), /readyz \
            (readiness), /metrics (Prometheus) and /stats (JSON).
            """)

    @Option(name: .shortAndLong, help: "The configuration file (YAML or JSON).")
    var config: String?

    @Option(name: .customLong("set"), help: "Override one setting, as path=value. Repeatable.")
    var overrides: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text, or json (one object per line). Default: service.logFormat, text unless set.")
    var logFormat: LogFormat?

    func run() async throws {
        let configuration = try ConfigurationLoader().load(file: config, overrides: overrides)
        let format = logFormat ?? configuration.service.logFormat
        let logger = makeLogger(label: "regen", level: logLevel, format: format)
        for warning in configuration.warnings { logger.warning("configuration: \(warning)") }
        let backend = PrometheusBackend()
        MetricsSystem.bootstrap(backend)
        let service = try await RegenService(configuration: configuration, logger: logger, metrics: backend)
        var services: [any Service] = []
        let http = configuration.service.http
        if http.enabled {
            if !http.isLoopback {
                logger.notice("HTTP endpoints reachable from other machines", metadata: ["address": "\(http.address)"])
            }
            services.append(
                MonitoringServer.make(for: service, settings: http, registry: backend.registry, logger: logger) { bound in
                    logger.info("HTTP endpoints listening", metadata: ["address": "\(bound)"])
                })
        }
        services.append(service)  // shut down first: the endpoints answer until it has stopped
        exitOnSecondSignal()
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(configuration.service.shutdownTimeoutMs) + .seconds(30)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

extension LogFormat: ExpressibleByArgument {}

/// A logger writing to standard error at `level`, as text or JSON lines.
func makeLogger(label: String, level: Logger.Level, format: LogFormat = .text) -> Logger {
    var logger = Logger(label: label) { label in
        switch format {
        case .text: StreamLogHandler.standardError(label: label)
        case .json: JSONLogHandler(label: label)
        }
    }
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
