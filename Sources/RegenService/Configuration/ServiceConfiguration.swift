import Foundation
import Orchestration
import RdKafka

/// Everything `regen run` needs, as read from the configuration file, the environment
/// and flags. Every key is optional; defaults suit a local broker.
public struct ServiceConfiguration: Sendable, Codable, Hashable {
    /// How to reach Kafka and which topics to consume.
    public var kafka: KafkaSettings
    /// Where results go.
    public var topics: OutputTopics
    /// The orchestrator (cycles, concurrency, retries, breaker, ...).
    public var orchestrator: OrchestratorConfig
    /// Which processor does the work.
    public var processor: ProcessorSettings
    /// Service behaviour (shutdown, revocation, identity).
    public var service: ServiceSettings
    /// What the loader found worth a warning (a secret file others can read); `regen run`
    /// logs them at start, `config check` prints them. Not part of the file format.
    public var warnings: [String] = []

    enum CodingKeys: String, CodingKey { case kafka, topics, orchestrator, processor, service }

    /// Creates a configuration; every argument has a default.
    public init(
        kafka: KafkaSettings = KafkaSettings(), topics: OutputTopics = OutputTopics(),
        orchestrator: OrchestratorConfig = OrchestratorConfig(), processor: ProcessorSettings = ProcessorSettings(),
        service: ServiceSettings = ServiceSettings()
    ) {
        self.kafka = kafka
        self.topics = topics
        self.orchestrator = orchestrator
        self.processor = processor
        self.service = service
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ServiceConfiguration()
        self.init(
            kafka: try c.value(.kafka, or: d.kafka), topics: try c.value(.topics, or: d.topics),
            orchestrator: try c.value(.orchestrator, or: d.orchestrator), processor: try c.value(.processor, or: d.processor),
            service: try c.value(.service, or: d.service))
    }

    /// Checks every section; Kafka properties are checked by librdkafka itself.
    /// - Throws: `ConfigurationErrors` listing each field at fault.
    public func validate() throws {
        var errors: [ConfigurationError] = []
        do { try orchestrator.validate() } catch let failure as ConfigurationErrors {
            errors += failure.errors.map { ConfigurationError(field: "orchestrator.\($0.field)", value: $0.value, allowed: $0.allowed) }
        }
        errors += kafka.problems() + topics.problems() + processor.problems() + service.problems()
        if errors.isEmpty {
            do { try consumerConfiguration().validate() } catch let error as KafkaError {
                errors.append(ConfigurationError(field: "kafka.properties.\(error.property ?? "?")", value: "", allowed: error.message))
            }
        }
        guard errors.isEmpty else { throw ConfigurationErrors(errors: errors) }
    }
}

extension KeyedDecodingContainer {
    /// A list given as a YAML/JSON array or as one comma-separated string.
    func list(_ key: Key, or fallback: [String]) throws -> [String] {
        if let text = try? decodeIfPresent(String.self, forKey: key) {
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return try decodeIfPresent([String].self, forKey: key) ?? fallback
    }
}
