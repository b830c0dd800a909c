import Foundation

/// What librdkafka's statistics callback last reported for a client
/// (`statistics.interval.ms`): per partition, the watermarks it has cached from fetch
/// responses and the consumer's committed offset and lag. Reading it costs no network
/// round trip; it is at most one interval old.
public struct KafkaStatistics: Sendable {
    /// One partition as librdkafka sees it.
    public struct Partition: Sendable, Hashable {
        /// The high watermark from the last fetch response; nil until known.
        public var highWatermark: Int64?
        /// The group's committed offset; nil until known.
        public var committedOffset: Int64?
        /// High watermark minus committed offset (`consumer_lag`); nil until both are known.
        public var consumerLag: Int64?
    }

    /// The consumer group as librdkafka's group handler sees it (`cgrp`).
    public struct Group: Sendable, Hashable {
        /// Where the member is in joining: `init`, `wait-join` (JoinGroup sent), `wait-metadata`
        /// and `wait-sync` (JoinGroup answered, SyncGroup under way), `wait-assign-call`,
        /// `wait-unassign-call`, …, `steady` (assignment in place).
        public var joinState: String
    }

    /// When the statistics were emitted.
    public var receivedAt: ContinuousClock.Instant
    /// Every partition of every topic the client knows, whether or not it is assigned.
    public var partitions: [TopicPartition: Partition]
    /// The consumer group; nil for a client without one (a producer).
    public var group: Group?

    /// Parses the JSON librdkafka emits; nil when it is not the expected shape.
    static func parse(_ json: UnsafeBufferPointer<UInt8>, at instant: ContinuousClock.Instant) -> KafkaStatistics? {
        guard let base = json.baseAddress,
            let document = try? JSONDecoder().decode(
                Document.self, from: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: json.count, deallocator: .none))
        else { return nil }
        var partitions: [TopicPartition: Partition] = [:]
        for (topic, entry) in document.topics ?? [:] {
            for partition in entry.partitions?.values ?? [:].values where partition.partition >= 0 {
                let known = { (value: Int64?) in value.flatMap { $0 >= 0 ? $0 : nil } }
                partitions[TopicPartition(topic: topic, partition: partition.partition)] = Partition(
                    highWatermark: known(partition.highWatermark), committedOffset: known(partition.committedOffset),
                    consumerLag: known(partition.consumerLag))
            }
        }
        let group = document.cgrp.map { Group(joinState: $0.joinState ?? "") }
        return KafkaStatistics(receivedAt: instant, partitions: partitions, group: group)
    }

    // The subset of librdkafka's STATISTICS.md schema read here.
    private struct Document: Decodable {
        var topics: [String: Topic]?
        var cgrp: GroupEntry?
    }

    private struct GroupEntry: Decodable {
        var joinState: String?

        enum CodingKeys: String, CodingKey {
            case joinState = "join_state"
        }
    }

    private struct Topic: Decodable {
        var partitions: [String: PartitionEntry]?
    }

    private struct PartitionEntry: Decodable {
        var partition: Int
        var highWatermark: Int64?
        var committedOffset: Int64?
        var consumerLag: Int64?

        enum CodingKeys: String, CodingKey {
            case partition
            case highWatermark = "hi_offset"
            case committedOffset = "committed_offset"
            case consumerLag = "consumer_lag"
        }
    }
}
