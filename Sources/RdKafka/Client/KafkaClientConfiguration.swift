internal import CRdKafka

/// The complete, ordered list of librdkafka properties for one client, and the
/// single place that turns it into an `rd_kafka_conf_t`.
struct KafkaPropertyList: Sendable, CustomStringConvertible {
    private(set) var entries: [(name: String, value: String)] = []

    init(_ connection: KafkaConnection, role: [(String, String)], overrides: [String: String]) {
        for (name, value) in connection.typedProperties + role { set(name, value) }
        // Pass-through properties win over typed ones; sorted so the result is deterministic.
        for (name, value) in connection.properties.sorted(by: { $0.key < $1.key }) { set(name, value) }
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) { set(name, value) }
    }

    mutating func set(_ name: String, _ value: String) {
        if let index = entries.firstIndex(where: { $0.name == name }) {
            entries[index].value = value
        } else {
            entries.append((name, value))
        }
    }

    func value(_ name: String) -> String? { entries.last { $0.name == name }?.value }

    /// Builds a librdkafka configuration; the caller owns the result.
    /// - Throws: `KafkaError.configuration` naming the first property librdkafka rejects.
    func makeConf() throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        for (name, value) in entries {
            let (result, message) = withErrorBuffer { rd_kafka_conf_set(conf, name, value, $0, $1) }
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError.configuration(property: name, message: message)
            }
        }
        return conf
    }

    /// Checks every property with librdkafka without creating a client.
    /// - Throws: `KafkaError.configuration` naming the first rejected property.
    func validate() throws {
        rd_kafka_conf_destroy(try makeConf())
    }

    /// Every property as `name=value`, secrets redacted.
    var description: String {
        entries.map { "\($0.name)=\(KafkaSecrets.redacted($0.name, $0.value))" }.joined(separator: ", ")
    }
}
