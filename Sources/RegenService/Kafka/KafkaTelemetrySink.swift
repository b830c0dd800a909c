import CoreMetrics
import Foundation
import Logging
import Orchestration
import RdKafka
import ServiceLifecycle
import Synchronization

/// Publishes telemetry to Kafka without ever holding up processing: events go into a
/// bounded buffer (the oldest are dropped when it is full) and a background service
/// sends them, every event to the telemetry topic and warnings and alerts to the alerts
/// topic too. Dropped and undeliverable events are counted and reported.
final class KafkaTelemetrySink: TelemetrySink, Service {
    struct Counters: Sendable {
        var published = 0
        var dropped = 0
    }

    private let producer: KafkaProducer
    private let telemetryTopic: String
    private let alertsTopic: String
    private let logger: Logger
    private let stream: AsyncStream<TelemetryEvent>
    private let continuation: AsyncStream<TelemetryEvent>.Continuation
    private let counters = Mutex(Counters())
    private let publishedCounter: Counter
    private let droppedCounter: Counter
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    init(
        producer: KafkaProducer, telemetryTopic: String, alertsTopic: String, capacity: Int = 10_000, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        publishedCounter = Counter(label: "regen_telemetry_events_total", dimensions: [("result", "published")], factory: metrics)
        droppedCounter = Counter(label: "regen_telemetry_events_total", dimensions: [("result", "dropped")], factory: metrics)
        self.producer = producer
        self.telemetryTopic = telemetryTopic
        self.alertsTopic = alertsTopic
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: TelemetryEvent.self, bufferingPolicy: .bufferingNewest(capacity))
    }

    var snapshot: Counters { counters.withLock { $0 } }

    func emit(_ event: TelemetryEvent) async {
        if case .dropped = continuation.yield(event) {
            counters.withLock { $0.dropped += 1 }
            droppedCounter.increment()
        }
    }

    /// Sends until the buffer is finished (``finish()``), then returns; at most 256 in flight.
    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            for await event in stream {
                if inFlight >= 256 {
                    await group.next()
                    inFlight -= 1
                }
                group.addTask { await self.publish(event) }
                inFlight += 1
            }
        }
    }

    /// Stops accepting events; ``run()`` returns once the buffered ones are sent.
    func finish() { continuation.finish() }

    private func publish(_ event: TelemetryEvent) async {
        guard let value = try? encoder.encode(event) else { return }
        let key = Array(event.instance.utf8)
        var topics = [telemetryTopic]
        if event.eventType.isAlert { topics.append(alertsTopic) }
        for topic in topics {
            do {
                try await producer.send(topic: topic, key: key, value: Array(value))
                counters.withLock { $0.published += 1 }
                publishedCounter.increment()
            } catch {
                counters.withLock { $0.dropped += 1 }
                droppedCounter.increment()
                logger.debug("telemetry event not delivered", metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
    }
}
