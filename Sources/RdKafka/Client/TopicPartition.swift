/// One partition of one topic.
public struct TopicPartition: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    /// The topic name.
    public var topic: String
    /// The partition number.
    public var partition: Int

    /// Creates a reference to `topic`'s partition `partition`.
    public init(topic: String, partition: Int) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// A position in a partition: the offset of the next message to read or commit.
public struct TopicPartitionOffset: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The partition.
    public var topicPartition: TopicPartition
    /// The offset; for commits, the offset of the next message to consume.
    public var offset: Int64

    /// Creates a position `offset` in `topic`'s partition `partition`.
    public init(topic: String, partition: Int, offset: Int64) {
        self.topicPartition = TopicPartition(topic: topic, partition: partition)
        self.offset = offset
    }

    /// Creates a position `offset` in `topicPartition`.
    public init(_ topicPartition: TopicPartition, offset: Int64) {
        self.topicPartition = topicPartition
        self.offset = offset
    }

    /// The topic name.
    public var topic: String { topicPartition.topic }
    /// The partition number.
    public var partition: Int { topicPartition.partition }

    public var description: String { "\(topicPartition)@\(offset)" }

    /// The offset librdkafka uses for "no committed offset".
    public static let invalidOffset: Int64 = -1001
}
