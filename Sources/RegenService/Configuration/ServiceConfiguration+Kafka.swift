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

    /// How the consumer engine cuts and overlaps cycles.
    var engineSettings: EngineSettings {
        let cycle = orchestrator.cycle
        return EngineSettings(
            maxEvents: cycle.maxEvents, maxWait: .milliseconds(cycle.maxWaitMs), cyclesInFlight: service.cyclesInFlight,
            bufferRecords: 4 * cycle.maxEvents, bufferBytes: service.bufferMaxBytes,
            revocationTimeout: .milliseconds(service.revocationTimeoutMs),
            shutdownTimeout: .milliseconds(service.shutdownTimeoutMs))
    }

    /// The idempotent producer for dead letters: they are awaited inside a cycle, so it
    /// lingers 1 ms.
    public func deadLetterProducerConfiguration() -> KafkaProducerConfiguration {
        var connection = kafka.connection
        connection.clientID += "-dlq"
        return KafkaProducerConfiguration(connection: connection, linger: .milliseconds(1))
    }

    /// The producer for telemetry and alerts, on `kafka.telemetryBootstrapServers` when set.
    /// A record undelivered after 30 s is dropped (and counted): telemetry must never pile up.
    public func telemetryProducerConfiguration() -> KafkaProducerConfiguration {
        var connection = kafka.connection
        connection.clientID += "-telemetry"
        if let servers = kafka.telemetryBootstrapServers, !servers.isEmpty { connection.bootstrapServers = servers }
        return KafkaProducerConfiguration(connection: connection, deliveryTimeout: .seconds(30), linger: .milliseconds(20))
    }
}
