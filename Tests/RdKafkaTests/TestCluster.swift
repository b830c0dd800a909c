import Foundation
import Logging
import RdKafka
import Testing

/// An embedded cluster per test, with the settings DESIGN.md prescribes for tests:
/// a short session timeout (rejoins wait about session.timeout - 1 s) and a short fetch wait.
struct TestCluster {
    let cluster: EmbeddedCluster
    let logger: Logger

    init(brokers: Int = 3) throws {
        var logger = Logger(label: "test")
        logger.logLevel = ProcessInfo.processInfo.environment["REGEN_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        self.logger = logger
        cluster = try EmbeddedCluster(brokers: brokers, logger: logger)
    }

    func consumerConfiguration(
        group: String, strategy: KafkaConsumerConfiguration.AssignmentStrategy = .cooperativeSticky
    ) -> KafkaConsumerConfiguration {
        KafkaConsumerConfiguration(
            connection: cluster.connection(clientID: "test-consumer"), groupID: group,
            sessionTimeout: .milliseconds(6000), fetchWaitMax: .milliseconds(20),
            assignmentStrategy: strategy, revocationTimeout: .seconds(10))
    }

    func producer(deliveryTimeout: Duration = .seconds(30)) throws -> KafkaProducer {
        try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                connection: cluster.connection(clientID: "test-producer"), deliveryTimeout: deliveryTimeout),
            logger: logger)
    }

    func consumer(
        group: String, strategy: KafkaConsumerConfiguration.AssignmentStrategy = .cooperativeSticky,
        topics: [String], onRebalance: KafkaRebalanceHandler? = nil
    ) async throws -> KafkaConsumer {
        let consumer = try KafkaConsumer(
            configuration: consumerConfiguration(group: group, strategy: strategy), logger: logger,
            rebalanceHandler: onRebalance)
        try await consumer.subscribe(topics)
        return consumer
    }

    /// Sends `count` keyed records concurrently and waits for every acknowledgement.
    func produce(_ count: Int, to topic: String, keys: Int = 100) async throws {
        let producer = try producer()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await producer.send(
                        topic: topic, key: Array("key-\(index % keys)".utf8), value: Array("value-\(index)".utf8))
                }
                if index % 1000 == 999 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
        try await producer.close()
    }
}

/// Polls until `count` messages arrived or `deadline` passed.
func receive(_ count: Int, from consumer: KafkaConsumer, within deadline: Duration = .seconds(60)) async throws
    -> [KafkaMessage]
{
    let end = ContinuousClock.now + deadline
    var messages: [KafkaMessage] = []
    while messages.count < count && ContinuousClock.now < end {
        messages += try await consumer.poll(maxMessages: count - messages.count, timeout: .milliseconds(200))
    }
    return messages
}

/// Polls for `duration` and returns whatever arrived.
func drain(_ consumer: KafkaConsumer, for duration: Duration) async throws -> [KafkaMessage] {
    let end = ContinuousClock.now + duration
    var messages: [KafkaMessage] = []
    while ContinuousClock.now < end {
        messages += try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(200))
    }
    return messages
}

/// What a consumer joining a group reads: polls until it has an assignment (keeping what
/// arrives meanwhile), then for `duration` more. A join right after another member left
/// takes about `session.timeout.ms - 1 s` on the embedded cluster, so a fixed read without
/// this wait can end before the consumer owns anything and find nothing whatever was committed.
func readAfterJoining(_ consumer: KafkaConsumer, for duration: Duration, within deadline: Duration = .seconds(60)) async throws
    -> [KafkaMessage]
{
    let end = ContinuousClock.now + deadline
    var messages: [KafkaMessage] = []
    while consumer.assignment.isEmpty && ContinuousClock.now < end {
        messages += try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(200))
    }
    #expect(!consumer.assignment.isEmpty, "the consumer got no assignment within \(deadline)")
    return messages + (try await drain(consumer, for: duration))
}

/// Polls until `condition` holds (rebalances happen inside poll) or `deadline` passes.
func pollUntil(
    _ consumers: [KafkaConsumer], within deadline: Duration = .seconds(60), _ condition: () -> Bool
) async throws -> Bool {
    let end = ContinuousClock.now + deadline
    while ContinuousClock.now < end {
        if condition() { return true }
        for consumer in consumers { _ = try await consumer.poll(maxMessages: 100, timeout: .milliseconds(50)) }
    }
    return condition()
}

/// The offset of the next message to read, per partition, after `messages`.
func nextOffsets(after messages: [KafkaMessage]) -> [TopicPartitionOffset] {
    var highest: [TopicPartition: Int64] = [:]
    for message in messages { highest[message.topicPartition] = max(highest[message.topicPartition] ?? -1, message.offset) }
    return highest.map { TopicPartitionOffset($0.key, offset: $0.value + 1) }
}

func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }
