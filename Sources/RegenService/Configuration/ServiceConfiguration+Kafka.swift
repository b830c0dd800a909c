import Orchestration
import RdKafka

extension ServiceConfiguration {
    /// The consumer these settings describe; offsets are committed by the service.
    public func consumerConfiguration() -> KafkaConsumerConfiguration {
        KafkaConsumerConfiguration(
            connection: kafka.connection, groupID: kafka.groupId, sessionTimeout: .milliseconds(kafka.sessionTimeoutMs),
            fetchWaitMax: .milliseconds(kafka.fetchWaitMaxMs), maxPollInterval: .milliseconds(kafka.maxPollIntervalMs),
            autoOffsetReset: kafka.autoOffsetReset, assignmentStrategy: kafka.assignmentStrategy,
            revocationTimeout: .milliseconds(service.revocationTimeoutMs))
    }

    /// The producer for dead letters (idempotent, acknowledged by all in-sync replicas).
    public func producerConfiguration(clientSuffix: String) -> KafkaProducerConfiguration {
        var connection = kafka.connection
        connection.clientID += "-\(clientSuffix)"
        return KafkaProducerConfiguration(connection: connection)
    }
}
