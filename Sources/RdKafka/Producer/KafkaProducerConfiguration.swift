/// Settings for a producer. Idempotence is on by default, so retries never write a
/// record twice or out of order.
public struct KafkaProducerConfiguration: Sendable, Hashable {
    /// Brokers, identity and security.
    public var connection: KafkaConnection
    /// Exactly-once per partition for retried sends (`enable.idempotence`).
    public var idempotent: Bool
    /// How long a record may wait for delivery before its send fails (`message.timeout.ms`).
    public var deliveryTimeout: Duration
    /// How long to wait for more records to batch with (`linger.ms`).
    public var linger: Duration
    /// Compression codec: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    public var compression: String

    /// Creates producer settings; every argument has a default.
    public init(
        connection: KafkaConnection = KafkaConnection(), idempotent: Bool = true,
        deliveryTimeout: Duration = .seconds(120), linger: Duration = .milliseconds(5),
        compression: String = "none"
    ) {
        self.connection = connection
        self.idempotent = idempotent
        self.deliveryTimeout = deliveryTimeout
        self.linger = linger
        self.compression = compression
    }

    var propertyList: KafkaPropertyList {
        let role: [(String, String)] = [
            ("enable.idempotence", idempotent ? "true" : "false"),
            ("message.timeout.ms", String(deliveryTimeout.clampedMilliseconds)),
            ("linger.ms", String(linger.clampedMilliseconds)),
            ("compression.codec", compression),
        ]
        return KafkaPropertyList(connection, role: role, overrides: [:])
    }

    /// Checks every property with librdkafka without connecting.
    /// - Throws: `KafkaError.configuration` naming the rejected property.
    public func validate() throws { try propertyList.validate() }

    /// The effective librdkafka properties, secrets redacted.
    public var effectiveProperties: String { propertyList.description }
}
