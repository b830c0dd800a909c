import struct Foundation.Date

/// A Kafka record header; a header may have a null value, distinct from an empty one.
public struct KafkaHeader: Hashable, Sendable {
    /// The header name.
    public var key: String
    /// The header value; `nil` is Kafka's null.
    public var value: [UInt8]?

    /// Creates a header with a binary value.
    public init(key: String, value: [UInt8]?) {
        self.key = key
        self.value = value
    }

    /// Creates a header whose value is the UTF-8 bytes of `string`.
    public init(key: String, string: String) {
        self.init(key: key, value: Array(string.utf8))
    }
}

/// A record read from Kafka.
public struct KafkaMessage: Sendable, Hashable {
    /// The topic it was read from.
    public var topic: String
    /// The partition it was read from.
    public var partition: Int
    /// Its offset in the partition.
    public var offset: Int64
    /// The record key; `nil` is Kafka's null key.
    public var key: [UInt8]?
    /// The record value; `nil` is a tombstone.
    public var value: [UInt8]?
    /// The record headers, in the order they were written.
    public var headers: [KafkaHeader]
    /// The record timestamp, when the broker or producer set one.
    public var timestamp: Date?

    /// Creates a message value (used by fakes and tests; the consumer builds its own).
    public init(
        topic: String, partition: Int, offset: Int64, key: [UInt8]? = nil, value: [UInt8]? = nil,
        headers: [KafkaHeader] = [], timestamp: Date? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    /// The partition it was read from.
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// The first header named `key`, if any.
    public func header(_ key: String) -> KafkaHeader? { headers.first { $0.key == key } }
}

/// Where the broker stored a produced record.
public struct DeliveryReport: Sendable, Hashable {
    /// The topic written to.
    public var topic: String
    /// The partition the record went to.
    public var partition: Int
    /// The offset the broker assigned.
    public var offset: Int64
}
