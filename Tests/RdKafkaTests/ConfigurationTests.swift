import Logging
import RdKafka
import Testing

@Suite("Configuration", .timeLimit(.minutes(3)))
struct ConfigurationTests {
    @Test("An unknown property is rejected with its name")
    func unknownProperty() throws {
        let configuration = KafkaConsumerConfiguration(
            connection: KafkaConnection(properties: ["fetch.wait.maximum.ms": "10"]), groupID: "g")
        let error = #expect(throws: KafkaError.self) { try configuration.validate() }
        #expect(error?.code == .configuration)
        #expect(error?.property == "fetch.wait.maximum.ms")
        #expect(error?.description.contains("fetch.wait.maximum.ms") == true)
    }

    @Test("An invalid value is rejected with the property and librdkafka's message")
    func invalidValue() throws {
        let configuration = KafkaProducerConfiguration(compression: "brotli")
        let error = #expect(throws: KafkaError.self) { try configuration.validate() }
        #expect(error?.property == "compression.codec")
        #expect(error?.message.isEmpty == false)
        #expect(throws: KafkaError.self) {
            try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(
                    connection: KafkaConnection(properties: ["session.timeout.ms": "-5"]), groupID: "g"),
                logger: Logger(label: "test"))
        }
    }

    @Test("Secrets never appear in the effective configuration")
    func secretsRedacted() throws {
        let connection = KafkaConnection(
            securityProtocol: .saslSSL, sasl: .init(mechanism: "SCRAM-SHA-512", username: "svc", password: "hunter2"),
            tls: .init(keyPassword: "keypass"), properties: ["sasl.oauthbearer.client.secret": "s3cr3t"])
        let text = KafkaConsumerConfiguration(connection: connection, groupID: "g").effectiveProperties
        for secret in ["hunter2", "keypass", "s3cr3t"] { #expect(!text.contains(secret)) }
        #expect(text.contains("sasl.username=svc"))
        #expect(text.contains("sasl.password=[redacted]"))
    }

    @Test("The service owns commits: pass-through properties cannot turn auto-commit back on")
    func autoCommitStaysOff() {
        let configuration = KafkaConsumerConfiguration(
            connection: KafkaConnection(properties: ["enable.auto.commit": "true", "fetch.min.bytes": "10"]),
            groupID: "g")
        #expect(configuration.effectiveProperties.contains("enable.auto.commit=false"))
        #expect(configuration.effectiveProperties.contains("enable.auto.offset.store=false"))
        #expect(configuration.effectiveProperties.contains("fetch.min.bytes=10"))
    }
}
