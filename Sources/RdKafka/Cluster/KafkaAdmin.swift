internal import CRdKafka
import Logging

/// Topic administration on a real cluster through the Kafka Admin API.
public final class KafkaAdmin: KafkaTopicAdministration {
    private let handle: KafkaHandle
    private let context: ClientContext
    private let thread = KafkaThread(name: "kafka-admin")
    private let requestTimeout: Duration

    /// Creates an admin client.
    /// - Throws: `KafkaError.configuration` naming a rejected property.
    public init(connection: KafkaConnection, logger: Logger, requestTimeout: Duration = .seconds(30)) throws {
        context = ClientContext(logger: logger)
        self.requestTimeout = requestTimeout
        let properties = KafkaPropertyList(connection, role: [], overrides: [:])
        handle = KafkaHandle(pointer: try context.makeHandle(RD_KAFKA_PRODUCER, properties))
    }

    deinit {
        // Destroying blocks: done on the admin's own thread, never on the caller's.
        thread.execute { [handle, context] in withExtendedLifetime(context) { rd_kafka_destroy(handle.pointer) } }
        thread.stop()
    }

    public func createTopic(_ topic: String, partitions: Int, replicationFactor: Int) async throws {
        guard partitions > 0 else { throw KafkaError.invalidArgument("partitions must be > 0, got \(partitions)") }
        try await thread.run("admin") { [self] in
            try createTopicBlocking(topic, partitions: partitions, replicationFactor: replicationFactor)
        }
    }

    private func createTopicBlocking(_ topic: String, partitions: Int, replicationFactor: Int) throws {
        let (newTopic, message) = withErrorBuffer {
            rd_kafka_NewTopic_new(topic, Int32(partitions), Int32(replicationFactor), $0, $1)
        }
        guard let newTopic else { throw KafkaError.invalidArgument("topic \(topic): \(message)") }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let queue = rd_kafka_queue_new(handle.pointer)!
        defer { rd_kafka_queue_destroy(queue) }
        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(handle.pointer, &topics, 1, nil, queue)
        guard let event = rd_kafka_queue_poll(queue, requestTimeout.clampedMilliseconds) else {
            throw KafkaError.timedOut("create topic \(topic)")
        }
        defer { rd_kafka_event_destroy(event) }
        try Self.check(event, topic: topic)
    }

    private static func check(_ event: OpaquePointer, topic: String) throws {
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.librdkafka(KafkaResponseCode(err), context: "create topic \(topic)")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else { return }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
        for index in 0..<count {
            let code = KafkaResponseCode(rd_kafka_topic_result_error(results[index]))
            guard code == .noError || code == .topicAlreadyExists else {
                throw KafkaError.librdkafka(code, context: "create topic \(topic)")
            }
        }
    }
}
