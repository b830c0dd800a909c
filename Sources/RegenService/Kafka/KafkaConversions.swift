import Orchestration
import RdKafka

extension CycleRecord {
    /// The orchestrator's view of a consumed Kafka message.
    init(_ message: KafkaMessage) {
        self.init(
            position: SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset),
            key: message.key, value: message.value, headers: message.headers.map { ($0.key, $0.value) })
    }
}

extension TopicPartition {
    init(_ key: PartitionKey) { self.init(topic: key.topic, partition: key.partition) }
}
