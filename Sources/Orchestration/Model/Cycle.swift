import Foundation

/// A partition of an input topic, as the orchestrator sees it (it knows no Kafka types).
public struct PartitionKey: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The topic name.
    public var topic: String
    /// The partition number.
    public var partition: Int

    /// Creates a partition reference.
    public init(topic: String, partition: Int) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition) }
}

/// Where a record came from.
public struct SourcePosition: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The partition.
    public var partition: PartitionKey
    /// The record's offset in it.
    public var offset: Int64

    /// Creates a position.
    public init(topic: String, partition: Int, offset: Int64) {
        self.partition = PartitionKey(topic: topic, partition: partition)
        self.offset = offset
    }

    public var description: String { "\(partition)@\(offset)" }
}

/// One input record of a cycle, as read: decoding is part of the cycle (or done ahead by
/// ``predecode(maxBytes:)``), so bad input becomes a dead letter with its reason instead
/// of an error for the caller.
public struct CycleRecord: Sendable, Hashable {
    /// Where it came from.
    public var position: SourcePosition
    /// The record key (the event subject, by convention).
    public var key: [UInt8]?
    /// The record value (the change event JSON). Setting it forgets a ``predecode(maxBytes:)``.
    public var value: [UInt8]? { didSet { decoded = nil } }
    /// The record headers, in order; a nil value is Kafka's null.
    public var headers: [(key: String, value: [UInt8]?)]
    /// Dispatch priority: higher first (from the `priority` header; 0 when absent).
    public var priority: Int
    /// The value decoded ahead of its cycle, with the size limit it was decoded under. Boxed:
    /// a record is copied several times between the poller and its cycle, and a copy of the
    /// box retains one reference where a copy of the event retains each of its strings and maps.
    private(set) var decoded: Predecoded?

    /// Creates a record; `priority` defaults to the `priority` header's integer value, or 0.
    public init(
        position: SourcePosition, key: [UInt8]? = nil, value: [UInt8]?, headers: [(key: String, value: [UInt8]?)] = [],
        priority: Int? = nil
    ) {
        self.position = position
        self.key = key
        self.value = value
        self.headers = headers
        self.priority = priority ?? Self.priority(from: headers)
    }

    /// Decodes the value now, so the cycle that gets this record need not: a consumer
    /// calls it as records arrive, while the previous cycle runs. A cycle uses the result
    /// when `maxBytes` is its orchestrator's `maxEventBytes`, and decodes again otherwise;
    /// an invalid value still becomes a dead letter in the cycle.
    public mutating func predecode(maxBytes: Int) {
        decoded = Predecoded(maxBytes: maxBytes, result: Self.decode(value, maxBytes: maxBytes))
    }

    /// A value decoded, or why it is not a change event.
    static func decode(_ value: [UInt8]?, maxBytes: Int) -> Result<ChangeEvent, InvalidChangeEvent> {
        Result { () throws(InvalidChangeEvent) in try ChangeEvent.decode(value, maxBytes: maxBytes) }
    }

    /// The `priority` header as an integer, or 0.
    static func priority(from headers: [(key: String, value: [UInt8]?)]) -> Int {
        guard let bytes = headers.last(where: { $0.key == "priority" })?.value,
            let value = Int(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespaces))
        else { return 0 }
        return value
    }

    /// The first header named `key`, decoded as UTF-8.
    public func header(_ key: String) -> String? {
        headers.first { $0.key == key }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.position == rhs.position && lhs.key == rhs.key && lhs.value == rhs.value && lhs.priority == rhs.priority
            && lhs.headers.map(\.key) == rhs.headers.map(\.key) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(position)
        hasher.combine(value)
    }
}

/// A record's value decoded ahead of its cycle, and the size limit it was decoded under.
final class Predecoded: Sendable {
    let maxBytes: Int
    let result: Result<ChangeEvent, InvalidChangeEvent>

    init(maxBytes: Int, result: Result<ChangeEvent, InvalidChangeEvent>) {
        self.maxBytes = maxBytes
        self.result = result
    }
}

/// A batch of records to process as one regeneration cycle. Records of one partition
/// are in offset order.
public struct Cycle: Sendable {
    /// The records, in the order they were read.
    public var records: [CycleRecord]

    /// Creates a cycle.
    public init(records: [CycleRecord]) { self.records = records }
}
