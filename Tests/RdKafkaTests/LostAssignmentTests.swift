import RdKafka
import Synchronization
import Testing

@Suite("Lost assignment against the embedded cluster", .timeLimit(.minutes(3)))
struct LostAssignmentTests {
    @Test("A batch that spans a lost assignment holds no record from before the loss next to its re-fetched copy")
    func batchSpanningLoss() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("lost")
        try await test.cluster.createTopic(topic, partitions: 1)
        try await test.produce(2000, to: topic, keys: 10)
        let events = LostFlag()
        let consumer = try await test.consumer(group: uniqueName("g"), strategy: .range, topics: [topic]) { events.add($0) }
        _ = try await consumer.poll(maxMessages: 1, timeout: .seconds(20))  // joined, assigned, fetching
        let injector = Task {
            try await Task.sleep(for: .milliseconds(800))
            // UNKNOWN_MEMBER_ID on heartbeats: the member's assignment is lost; it rejoins and
            // gets the partition back, fetching again from the committed offset.
            try await test.cluster.injectErrors(Array(repeating: KafkaResponseCode(rawValue: 25), count: 3), for: KafkaAPIKey(rawValue: 12))
        }
        // Heartbeats go out every 3 s: the loss comes within the batch's 15 s.
        let batch = try await consumer.poll(maxMessages: 1_000_000, timeout: .seconds(15))
        let lostDuringBatch = events.lost
        try await injector.value
        let offsets = batch.map(\.offset)
        #expect(lostDuringBatch, "the assignment was not lost during the batch: the scenario did not happen")
        #expect(Set(offsets).count == offsets.count, "records from before the loss are still in the batch beside their re-fetched copies")
        // Nothing was committed, so after the loss the partition is read again from its start
        // (on a loaded machine the re-fetch may come in later batches).
        var seen = Set(offsets)
        let deadline = ContinuousClock.now + .seconds(60)
        while seen.count < 2000 && ContinuousClock.now < deadline {
            seen.formUnion(try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(500)).map(\.offset))
        }
        #expect(seen == Set(0..<2000), "records missing after the loss")
        try await consumer.close()
    }
}

/// Whether a `.lost` rebalance event was seen.
private final class LostFlag: Sendable {
    private let sawLost = Atomic(false)
    var lost: Bool { sawLost.load(ordering: .acquiring) }
    func add(_ event: KafkaRebalanceEvent) {
        if case .lost = event { sawLost.store(true, ordering: .releasing) }
    }
}
