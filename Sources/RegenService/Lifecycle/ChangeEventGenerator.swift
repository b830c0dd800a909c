import Foundation
import Orchestration
import RdKafka

/// Synthetic change events for demos, benchmarks and tests, with a share of malformed
/// records of several kinds. Deterministic: record `index` is always the same.
public struct ChangeEventGenerator: Sendable {
    /// Distinct subjects (Kafka keys).
    public var keys: Int
    /// Fraction of records that are malformed, in [0, 1].
    public var malformedRatio: Double
    /// Prefix of event ids, so runs can be told apart.
    public var idPrefix: String

    /// Creates a generator.
    public init(keys: Int = 100, malformedRatio: Double = 0, idPrefix: String = "evt") {
        self.keys = max(1, keys)
        self.malformedRatio = min(1, max(0, malformedRatio))
        self.idPrefix = idPrefix
    }

    /// Whether record `index` is malformed: spread evenly, `malformedRatio` of them.
    public func isMalformed(_ index: Int) -> Bool {
        malformedRatio > 0 && Int(Double(index + 1) * malformedRatio) > Int(Double(index) * malformedRatio)
    }

    /// The id of record `index` (also for malformed ones, where it may not be readable).
    public func id(_ index: Int) -> String { "\(idPrefix)-\(index)" }

    /// Key and value of record `index`.
    public func record(_ index: Int) -> (key: [UInt8], value: [UInt8]) {
        let subject = "node-\(index % keys)"
        guard !isMalformed(index) else { return (Array(subject.utf8), malformed(index, subject: subject)) }
        // Each subject's own history: added first, then updates, with an edge every tenth round.
        let round = index / keys
        let type: ChangeType = round == 0 ? .nodeAdded : (round % 10 == 9 ? .edgeAdded : .nodeUpdated)
        let event = ChangeEvent(
            id: id(index), changeType: type, timestamp: Date(), subject: subject,
            predicate: type == .edgeAdded ? "links_to" : nil, object: type == .edgeAdded ? "node-\((index + 1) % keys)" : nil,
            properties: ["title": .string("Node \(index % keys)"), "revision": .int(round)], source: "regen-produce",
            metadata: ["generator": "synthetic"])
        return (Array(subject.utf8), Array((try? JSONEncoder().encode(event)) ?? Data()))
    }

    private func malformed(_ index: Int, subject: String) -> [UInt8] {
        let kinds = [
            "{\"id\":\"\(id(index))\",\"change_type\":",  // truncated JSON
            "{\"id\":\"\(id(index))\",\"change_type\":\"node_exploded\",\"timestamp\":\"2025-10-10T12:00:00Z\",\"subject\":\"\(subject)\"}",
            "{\"id\":\"\(id(index))\",\"change_type\":\"node_added\",\"subject\":\"\(subject)\"}",  // no timestamp
            "{\"id\":\(index),\"change_type\":\"node_added\",\"timestamp\":\"2025-10-10T12:00:00Z\",\"subject\":\"\(subject)\"}",
        ]
        // Rotate by the malformed record's ordinal, so every kind occurs at any ratio.
        let ordinal = Int(Double(index) * malformedRatio)
        return Array(kinds[ordinal % kinds.count].utf8)
    }

    /// Sends records `range` to `topic`, at most 1,000 unacknowledged at a time.
    /// - Returns: where each record landed, in the order of `range`.
    /// - Throws: the first delivery error.
    @discardableResult
    public func send(_ range: Range<Int>, to topic: String, with producer: KafkaProducer) async throws -> [DeliveryReport] {
        var reports: [DeliveryReport?] = Array(repeating: nil, count: range.count)
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + 1000, range.upperBound)
            try await withThrowingTaskGroup(of: (Int, DeliveryReport).self) { group in
                for index in start..<end {
                    let (key, value) = record(index)
                    group.addTask { (index, try await producer.send(topic: topic, key: key, value: value)) }
                }
                for try await (index, report) in group { reports[index - range.lowerBound] = report }
            }
            start = end
        }
        return reports.compactMap { $0 }
    }
}
