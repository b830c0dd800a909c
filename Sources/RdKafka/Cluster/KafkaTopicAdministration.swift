/// Creates topics, idempotently: asking for a topic that exists succeeds.
public protocol KafkaTopicAdministration: Sendable {
    /// Creates `topic` with `partitions` partitions unless it already exists.
    /// - Throws: `KafkaError` when the cluster refuses or does not answer.
    func createTopic(_ topic: String, partitions: Int, replicationFactor: Int) async throws
}
