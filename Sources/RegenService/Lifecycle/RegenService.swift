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

    /// Builds every part; connects lazily.
    /// - Throws: `KafkaError` or a processor setup error.
    public init(configuration: ServiceConfiguration, logger: Logger) async throws {
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
            alertsTopic: configuration.topics.alerts, capacity: configuration.service.telemetryBuffer, logger: logger)
        orchestrator = try RegenerationOrchestrator(
            config: configuration.orchestrator, processor: await ProcessorFactory.make(configuration.processor),
            telemetry: telemetry,
            deadLetters: KafkaDeadLetterSink(producer: deadLetterProducer, topic: configuration.topics.deadLetter),
            environment: Self.environment(configuration, consumer: consumer), logger: logger)
        engine = ConsumerEngine(
            consumer: consumer, orchestrator: orchestrator, settings: configuration.engineSettings, logger: logger)
        engineBox.engine = engine
    }

    private static func environment(_ configuration: ServiceConfiguration, consumer: KafkaConsumer) -> OrchestrationEnvironment {
        var environment = OrchestrationEnvironment(pendingWork: { try? await ConsumerLag.total(of: consumer) })
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

    /// Consumer lag over the owned partitions (high watermark minus committed offset).
    public func lag() async -> Int64? { try? await ConsumerLag.total(of: consumer) }

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
