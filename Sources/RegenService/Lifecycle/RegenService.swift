import CoreMetrics
import Foundation
import Logging
import Orchestration
import RdKafka
import ServiceLifecycle

/// The whole service as one ServiceLifecycle `Service`: consumer, orchestrator (with its
/// health loop), dead-letter and telemetry producers, and the cycle loop.
///
/// Graceful shutdown: stop fetching, finish the cycle in flight (bounded by
/// `service.shutdownTimeoutMs`), commit, stop the orchestrator, leave the group, flush
/// the producers.
public final class RegenService: Service {
    /// What the service has done so far, for progress lines and summaries.
    public struct Progress: Sendable {
        public var stats: OrchestrationStats
        public var commits: Int
        public var failedCommits: Int
        public var telemetryPublished: Int
        public var telemetryDropped: Int
    }

    private let configuration: ServiceConfiguration
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let deadLetterProducer: KafkaProducer
    private let telemetryProducer: KafkaProducer
    private let telemetry: KafkaTelemetrySink
    private let orchestrator: RegenerationOrchestrator
    private let engine: ConsumerEngine
    private let gauges: SampledGauges

    /// Builds every part; connects lazily. Metrics go to `metrics` (the process's
    /// bootstrapped backend by default).
    /// - Throws: `KafkaError` or a processor setup error.
    public init(configuration: ServiceConfiguration, logger: Logger, metrics: any MetricsFactory = MetricsSystem.factory) async throws {
        self.configuration = configuration
        self.logger = logger
        let engineBox = EngineBox()
        consumer = try KafkaConsumer(
            configuration: configuration.consumerConfiguration(), logger: logger,
            rebalanceHandler: { event in await engineBox.engine?.handle(event) })
        deadLetterProducer = try KafkaProducer(configuration: configuration.deadLetterProducerConfiguration(), logger: logger)
        telemetryProducer = try KafkaProducer(configuration: configuration.telemetryProducerConfiguration(), logger: logger)
        telemetry = KafkaTelemetrySink(
            producer: telemetryProducer, telemetryTopic: configuration.topics.telemetry,
            alertsTopic: configuration.topics.alerts, capacity: configuration.service.telemetryBuffer, logger: logger,
            metrics: metrics)
        let processor = try await ProcessorFactory.make(configuration.processor, concurrency: configuration.orchestrator.concurrency)
        orchestrator = try RegenerationOrchestrator(
            config: configuration.orchestrator, processor: processor, telemetry: telemetry,
            deadLetters: KafkaDeadLetterSink(producer: deadLetterProducer, topic: configuration.topics.deadLetter),
            environment: Self.environment(configuration, consumer: consumer, metrics: metrics), logger: logger)
        engine = ConsumerEngine(
            consumer: consumer, orchestrator: orchestrator, settings: configuration.engineSettings, logger: logger,
            metrics: metrics)
        engineBox.engine = engine
        gauges = SampledGauges(factory: metrics)
    }

    private static func environment(
        _ configuration: ServiceConfiguration, consumer: KafkaConsumer, metrics: any MetricsFactory
    ) -> OrchestrationEnvironment {
        var environment = OrchestrationEnvironment(pendingWork: { ConsumerLag.cached(of: consumer)?.total }, metrics: metrics)
        if let instance = configuration.service.instance { environment.instance = instance }
        return environment
    }

    /// What has been done so far.
    public var progress: Progress {
        let commits = engine.snapshot
        let sent = telemetry.snapshot
        return Progress(
            stats: orchestrator.stats(), commits: commits.commits, failedCommits: commits.failedCommits,
            telemetryPublished: sent.published, telemetryDropped: sent.dropped)
    }

    /// Consumer lag over the owned partitions (high watermark minus committed offset),
    /// asked of the brokers.
    public func lag() async -> Int64? { try? await ConsumerLag.total(of: consumer) }

    /// Sets the gauges that are read rather than counted (lag, buffers, in-flight work,
    /// breaker, memory) from what each part knows now. Called before each scrape; costs
    /// no network round trip.
    public func sampleMetrics() {
        let status = engine.snapshot
        gauges.sample(
            status: status, orchestrator: orchestrator, lag: ConsumerLag.cached(of: consumer)?.partitions ?? [:],
            joinState: consumer.statistics?.group?.joinState)
    }

    /// The liveness probe (`/healthz`): fails when work has waited longer than
    /// `service.http.stuckAfterMs` without a cycle finishing, or a Kafka client failed fatally.
    public func liveness() -> ProbeResult {
        let fatal = [("consumer", consumer.fatalError), ("dead-letter producer", deadLetterProducer.fatalError),
                     ("telemetry producer", telemetryProducer.fatalError)]
            .compactMap { client, error in error.map { (client: client, error: "\($0)") } }
        return Probes.liveness(
            engine.snapshot, fatalErrors: fatal, stuckAfter: .milliseconds(configuration.service.http.stuckAfterMs), now: .now)
    }

    /// The readiness probe (`/readyz`): passes once the group has assigned this member its
    /// partitions (none counts), while commits succeed, the breaker is not open and the
    /// service is not stopping.
    public func readiness() -> ProbeResult {
        Probes.readiness(
            engine.snapshot, breaker: orchestrator.breakerState,
            commitsFailingAfter: .milliseconds(configuration.service.http.commitsFailingAfterMs), now: .now)
    }

    /// The orchestration statistics as `/stats` and the `regeneration_completed` telemetry show them.
    public var statsDocument: [String: JSONValue] { orchestrator.statsDocument() }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.telemetry.run() }
            let failure: (any Error)?
            do { try await processCycles(); failure = nil } catch { failure = error }
            telemetry.finish()
            // Buffered telemetry gets 10 s to go out; then its producer closes, failing the rest.
            group.addTask { [telemetryProducer] in
                try? await Task.sleep(for: .seconds(10))
                try? await telemetryProducer.close(timeout: .seconds(1))
            }
            _ = try await group.next()
            group.cancelAll()
            try await group.waitForAll()
            await closeProducers()
            let sent = telemetry.snapshot
            logger.info("telemetry", metadata: ["published": "\(sent.published)", "dropped": "\(sent.dropped)"])
            if let failure { throw failure }
        }
    }

    private func processCycles() async throws {
        try await orchestrator.start()
        try await consumer.subscribe(configuration.kafka.inputTopics)
        logger.info("consuming", metadata: ["topics": "\(configuration.kafka.inputTopics)", "group": "\(configuration.kafka.groupId)"])
        let loopFailure: (any Error)?
        do {
            try await withGracefulShutdownHandler {
                try await self.engine.run()
            } onGracefulShutdown: { [engine] in
                engine.requestStop()
            }
            loopFailure = nil
        } catch {
            loopFailure = error
        }
        await orchestrator.stop()
        do { try await consumer.close() } catch { logger.warning("consumer close", metadata: ["error": "\(error)"]) }
        if let loopFailure { throw loopFailure }
    }

    private func closeProducers() async {
        for producer in [deadLetterProducer, telemetryProducer] {
            do { try await producer.close(timeout: .seconds(10)) } catch {
                logger.warning("producer close", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Lets the consumer's rebalance handler reach the engine, which is created after it.
private final class EngineBox: @unchecked Sendable {  // written once in init, before the consumer subscribes
    var engine: ConsumerEngine?
}

/// Consumer lag: per owned partition, the high watermark minus the committed offset.
enum ConsumerLag {
    /// From librdkafka's last statistics: no network round trip, at most one statistics
    /// interval old; partitions whose lag is not known yet are left out, nil before any report.
    static func cached(of consumer: KafkaConsumer) -> (total: Int64, partitions: [TopicPartition: Int64])? {
        guard let statistics = consumer.statistics else { return nil }
        var partitions: [TopicPartition: Int64] = [:]
        for partition in consumer.assignment {
            if let lag = statistics.partitions[partition]?.consumerLag { partitions[partition] = lag }
        }
        return (partitions.values.reduce(0, +), partitions)
    }

    static func total(of consumer: KafkaConsumer) async throws -> Int64 {
        let owned = Array(consumer.assignment)
        guard !owned.isEmpty else { return 0 }
        let committed = try await consumer.committed(owned)
        var lag: Int64 = 0
        for position in committed {
            let marks = try await consumer.watermarks(of: position.topicPartition)
            let start = position.offset >= 0 ? position.offset : marks.low
            lag += max(0, marks.high - start)
        }
        return lag
    }
}
