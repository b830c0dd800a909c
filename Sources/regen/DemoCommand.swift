import ArgumentParser
import Foundation
import Logging
import Orchestration
import RdKafka
import Regeneration
import RegenService
import ServiceLifecycle

/// `regen demo`: the whole pipeline on an embedded cluster, with a live progress line.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the end-to-end demo: embedded cluster, a stream of change events, regen with the template processor.",
        discussion: """
            Starts a 3-broker embedded cluster, creates the topics, streams --events change events \
            (--malformed-ratio of them malformed) over --keys subjects, and runs the service with the \
            template processor into --output. Shows events/s, cycles, p95 cycle time, lag and dead \
            letters while it runs; stops when everything is processed (or after --duration seconds, \
            or on Ctrl-C) and prints a summary.
            """)

    @Option(help: "Change events to stream.")
    var events: Int = 20_000

    @Option(help: "Distinct subjects.")
    var keys: Int = 200

    @Option(help: "Fraction of malformed events, in [0, 1].")
    var malformedRatio: Double = 0.02

    @Option(help: "Stop after this many seconds at the latest.")
    var duration: Int = 90

    @Option(help: "The templates directory (manifest.yaml and *.mustache).")
    var templates: String = "examples/templates"

    @Option(help: "Where the regenerated artifacts go.")
    var output: String = "demo-output"

    func validate() throws {
        guard events >= 1, keys >= 1, duration >= 1 else { throw ValidationError("--events, --keys and --duration must be >= 1") }
        guard (0...1).contains(malformedRatio) else { throw ValidationError("--malformed-ratio must be in [0, 1]") }
        guard FileManager.default.fileExists(atPath: "\(templates)/manifest.yaml") else {
            throw ValidationError("--templates '\(templates)' has no manifest.yaml (run from the repository root, or pass --templates)")
        }
    }

    func run() async throws {
        let quiet = makeLogger(label: "regen.demo", level: .error)
        let cluster = try EmbeddedCluster(brokers: 3, logger: quiet)
        let configuration = try await prepare(cluster)
        print("embedded cluster: \(cluster.bootstrapServers)")
        print("streaming \(events) change events over \(keys) subjects (\(Int(malformedRatio * 100))% malformed) to regen.changes")
        let service = try await RegenService(configuration: configuration, logger: quiet)
        let group = ServiceGroup(configuration: .init(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask { try await stream(to: cluster) }
            try await watch(service, until: started + .seconds(duration))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        try await printSummary(service, cluster: cluster, elapsed: ContinuousClock.now - started)
    }

    private func prepare(_ cluster: EmbeddedCluster) async throws -> ServiceConfiguration {
        try await cluster.createTopic("regen.changes", partitions: 8)
        for topic in ["regen.telemetry", "regen.alerts", "regen.dlq"] { try await cluster.createTopic(topic, partitions: 2) }
        try? FileManager.default.removeItem(atPath: output)
        return try ConfigurationLoader(environment: [:]).load(file: nil, overrides: [
            "kafka.bootstrapServers=\(cluster.bootstrapServers)", "kafka.groupId=regen-demo", "kafka.sessionTimeoutMs=6000",
            "kafka.fetchWaitMaxMs=50", "processor.type=template", "processor.template.templates=\(templates)",
            "processor.template.output=\(output)", "orchestrator.healthCheckIntervalSecs=5", "orchestrator.concurrency=4",
            "service.instance=regen-demo",
        ])
    }

    /// Streams the events in slices of 500, so cycles see a flow rather than a backlog.
    private func stream(to cluster: EmbeddedCluster) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(connection: cluster.connection(clientID: "regen-demo-producer")),
            logger: makeLogger(label: "regen.demo", level: .error))
        let generator = ChangeEventGenerator(keys: keys, malformedRatio: malformedRatio, idPrefix: "demo")
        var next = 0
        while next < events && !Task.isCancelled {
            let end = min(next + 500, events)
            try await generator.send(next..<end, to: "regen.changes", with: producer)
            next = end
            try await Task.sleep(for: .milliseconds(50))
        }
        try await producer.close()
    }

    /// Prints the progress line every half second until all events are done or the deadline.
    private func watch(_ service: RegenService, until deadline: ContinuousClock.Instant) async throws {
        var previous = (time: ContinuousClock.now, done: 0)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            let progress = service.progress
            let lag = await service.lag() ?? -1
            let now = ContinuousClock.now
            let rate = Double(progress.stats.eventsProcessed - previous.done) / (now - previous.time).seconds
            previous = (now, progress.stats.eventsProcessed)
            let line = String(
                format: "\r%7.0f events/s | %5d cycles | p95 %6.1f ms | lag %6lld | done %6d/%d | dead letters %5d ",
                rate, progress.stats.totalCycles, progress.stats.p95CycleTimeMs, lag, progress.stats.eventsProcessed, events,
                progress.stats.eventsDeadLettered)
            FileHandle.standardError.write(Data(line.utf8))
            if progress.stats.eventsProcessed >= events && lag == 0 { break }
        }
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func printSummary(_ service: RegenService, cluster: EmbeddedCluster, elapsed: Duration) async throws {
        let progress = service.progress
        let stats = progress.stats
        let artifacts = FileManager.default.enumerator(atPath: output)?.allObjects.compactMap { $0 as? String }
            .filter { !$0.hasPrefix(".regen") && ($0.hasSuffix(".html") || $0.hasSuffix(".json") || $0.hasSuffix(".xml")) }.count ?? 0
        let outputs = (try? TemplateManifest.load(from: templates).artifacts.map(\.output).joined(separator: ", ")) ?? ""
        print("""

            summary (\(String(format: "%.1f", elapsed.seconds)) s)
              events in:               \(events) (\(ChangeEventGenerator(keys: keys, malformedRatio: malformedRatio).malformedCount(in: 0..<events)) malformed on purpose)
              processed:               \(stats.eventsSucceeded) succeeded, \(stats.eventsDeadLettered) dead-lettered, \(stats.eventsNotDone) left for redelivery
              cycles:                  \(stats.totalCycles) (mean \(String(format: "%.1f", stats.avgCycleTimeMs)) ms, p95 \(String(format: "%.1f", stats.p95CycleTimeMs)) ms)
              regenerations:           \(stats.regenerationsTriggered) renders, \(stats.deploymentsCompleted) atomic deployments
              artifacts on disk:       \(artifacts) files in \(output)/ (\(outputs))
              offset commits:          \(progress.commits) (\(progress.failedCommits) failed)
              telemetry:               \(progress.telemetryPublished) records to regen.telemetry and regen.alerts (\(progress.telemetryDropped) dropped)
              dead letters:            topic regen.dlq, each with regen.error, regen.attempts and regen.source.* headers
              subject state:           \(output)/.regen/state.sqlite (regen state export --output \(output))
            """)
    }
}

extension ChangeEventGenerator {
    func malformedCount(in range: Range<Int>) -> Int { range.filter(isMalformed).count }
}
