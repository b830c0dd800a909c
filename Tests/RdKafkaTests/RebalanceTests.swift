import RdKafka
import Synchronization
import Testing

/// Records rebalance events in order.
final class RebalanceLog: Sendable {
    private let events = Mutex<[KafkaRebalanceEvent]>([])
    var all: [KafkaRebalanceEvent] { events.withLock { $0 } }
    func record(_ event: KafkaRebalanceEvent) { events.withLock { $0.append(event) } }
}

@Suite("Rebalancing against the embedded cluster", .timeLimit(.minutes(3)))
struct RebalanceTests {
    @Test(
        "Two consumers split the partitions; after one closes the other owns all",
        arguments: [KafkaConsumerConfiguration.AssignmentStrategy.range, .cooperativeSticky])
    func splitThenTakeOver(strategy: KafkaConsumerConfiguration.AssignmentStrategy) async throws {
        let test = try TestCluster()
        let topic = uniqueName("split")
        try await test.cluster.createTopic(topic, partitions: 4)
        let group = uniqueName("group")
        let a = try await test.consumer(group: group, strategy: strategy, topics: [topic])
        #expect(try await pollUntil([a]) { a.assignment.count == 4 })
        let b = try await test.consumer(group: group, strategy: strategy, topics: [topic])
        let split = try await pollUntil([a, b]) {
            a.assignment.count == 2 && b.assignment.count == 2 && a.assignment.isDisjoint(with: b.assignment)
        }
        #expect(split, "assignments: \(a.assignment) / \(b.assignment)")

        // `a` owned every partition before `b` joined; committing one it gave up must fail.
        let movedAway = try #require(b.assignment.first)
        let error = await #expect(throws: KafkaError.self) {
            try await a.commit([TopicPartitionOffset(movedAway, offset: 1)])
        }
        #expect(error?.code == .notAssigned)
        #expect(try await b.committed([movedAway]).first?.offset == TopicPartitionOffset.invalidOffset)

        try await a.close()
        #expect(a.assignment.isEmpty)
        #expect(try await pollUntil([b]) { b.assignment.count == 4 }, "survivor owns \(b.assignment)")
        try await b.close()
    }

    @Test(
        "A revoke reaches the handler before the partitions are released, so it can commit",
        arguments: [KafkaConsumerConfiguration.AssignmentStrategy.range, .cooperativeSticky])
    func revokeHandlerCommits(strategy: KafkaConsumerConfiguration.AssignmentStrategy) async throws {
        let test = try TestCluster()
        let topic = uniqueName("revoke")
        try await test.cluster.createTopic(topic, partitions: 4)
        try await test.produce(400, to: topic, keys: 400)
        let group = uniqueName("group")
        let log = RebalanceLog()
        let consumed = Mutex<[KafkaMessage]>([])
        let commitResults = Mutex<[Bool]>([])
        let holder = ConsumerHolder()
        let handler: KafkaRebalanceHandler = { event in
            log.record(event)
            guard case .revoked(let partitions) = event, let consumer = holder.consumer else { return }
            let done = nextOffsets(after: consumed.withLock { $0 }).filter { partitions.contains($0.topicPartition) }
            do {
                try await consumer.commit(done)
                commitResults.withLock { $0.append(true) }
            } catch {
                commitResults.withLock { $0.append(false) }
            }
        }
        let consumer = try KafkaConsumer(
            configuration: test.consumerConfiguration(group: group, strategy: strategy), logger: test.logger,
            rebalanceHandler: handler)
        holder.consumer = consumer
        try await consumer.subscribe([topic])
        let messages = try await receive(400, from: consumer)
        consumed.withLock { $0 = messages }
        try await consumer.close()
        holder.consumer = nil

        #expect(commitResults.withLock { $0 } == [true], "events: \(log.all)")
        guard case .revoked(let revoked)? = log.all.last else {
            Issue.record("last event was not a revoke: \(log.all)")
            return
        }
        #expect(Set(revoked).count == 4)
        let check = try await test.consumer(group: group, topics: [topic])
        #expect(try await readAfterJoining(check, for: .seconds(3)).isEmpty, "the revoke-time commit did not hold")
        try await check.close()
    }
}

@Suite("Dropping a consumer", .timeLimit(.minutes(2)))
struct DroppedConsumerTests {
    @Test("A consumer dropped without close() still leaves the group; another member takes its partitions")
    func droppedConsumerLeaves() async throws {
        let test = try TestCluster()
        let topic = uniqueName("dropped")
        try await test.cluster.createTopic(topic, partitions: 4)
        let group = uniqueName("group")
        var first: KafkaConsumer? = try await test.consumer(group: group, topics: [topic])
        #expect(try await pollUntil([first!]) { first!.assignment.count == 4 })
        first = nil  // deinit closes it on its own poll thread
        let second = try await test.consumer(group: group, topics: [topic])
        #expect(try await pollUntil([second]) { second.assignment.count == 4 })
        try await second.close()
    }
}

/// Lets a rebalance handler reach the consumer it was given to without a retain cycle.
final class ConsumerHolder: Sendable {
    private let value = Mutex<KafkaConsumer?>(nil)
    var consumer: KafkaConsumer? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
