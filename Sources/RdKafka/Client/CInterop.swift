internal import CRdKafka
import struct Foundation.Date

/// Owns an `rd_kafka_topic_partition_list_t` for the span of one C call.
struct PartitionList: ~Copyable {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
    }

    init(_ partitions: [TopicPartition]) {
        self.init(capacity: partitions.count)
        for partition in partitions { add(partition, offset: TopicPartitionOffset.invalidOffset) }
    }

    init(_ positions: [TopicPartitionOffset]) {
        self.init(capacity: positions.count)
        for position in positions { add(position.topicPartition, offset: position.offset) }
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    func add(_ partition: TopicPartition, offset: Int64) {
        let element = rd_kafka_topic_partition_list_add(pointer, partition.topic, Int32(partition.partition))!
        element.pointee.offset = offset
    }

    /// Every element with its offset and per-partition error.
    var elements: [(position: TopicPartitionOffset, error: KafkaResponseCode)] {
        Self.elements(of: pointer)
    }

    static func elements(
        of list: UnsafePointer<rd_kafka_topic_partition_list_t>
    ) -> [(position: TopicPartitionOffset, error: KafkaResponseCode)] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elems = list.pointee.elems else { return [] }
        return (0..<count).map { index in
            let element = elems[index]
            let position = TopicPartitionOffset(
                topic: String(cString: element.topic), partition: Int(element.partition), offset: element.offset)
            return (position, KafkaResponseCode(element.err))
        }
    }

    static func partitions(of list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        elements(of: list).map(\.position.topicPartition)
    }
}

extension KafkaMessage {
    /// Copies a consumed `rd_kafka_message_t` into Swift values.
    init(_ message: UnsafePointer<rd_kafka_message_t>) {
        let m = message.pointee
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let millis = rd_kafka_message_timestamp(message, &timestampType)
        self.init(
            topic: topic, partition: Int(m.partition), offset: m.offset,
            key: Self.bytes(m.key, m.key_len), value: Self.bytes(m.payload, m.len),
            headers: Self.headers(of: message),
            timestamp: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
                ? nil : Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    private static func bytes(_ pointer: UnsafeRawPointer?, _ length: Int) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private static func headers(of message: UnsafePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
            return []
        }
        var result: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            result.append(KafkaHeader(key: name.map { String(cString: $0) } ?? "", value: bytes(value, size)))
            index += 1
        }
        return result
    }
}

extension Duration {
    /// Whole milliseconds, clamped to what librdkafka's `int` timeouts accept.
    var clampedMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, millis))
    }
}

/// The text librdkafka writes into a caller-provided error buffer.
func withErrorBuffer<T>(_ body: (UnsafeMutablePointer<CChar>, Int) -> T) -> (T, String) {
    var buffer = [CChar](repeating: 0, count: 512)
    let result = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    let message = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return (result, message)
}
