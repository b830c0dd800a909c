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

    /// An idempotent producer. Dead letters are awaited inside a cycle, so their producer
    /// lingers 1 ms; telemetry is sent in the background and batches longer.
    public func producerConfiguration(clientSuffix: String, linger: Duration = .milliseconds(5)) -> KafkaProducerConfiguration {
        var connection = kafka.connection
        connection.clientID += "-\(clientSuffix)"
        return KafkaProducerConfiguration(connection: connection, linger: linger)
    }
}
