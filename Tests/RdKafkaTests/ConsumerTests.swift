import RdKafka
import Synchronization
import Testing

@Suite("Consumer against the embedded cluster", .timeLimit(.minutes(3)))
struct ConsumerTests {
    @Test("10,000 keyed messages arrive exactly once, in offset order, and commits hold per group")
    func exactlyOnceThenCommitted() async throws {
        let test = try TestCluster()
        let topic = uniqueName("events")
        try await test.cluster.createTopic(topic, partitions: 4)
        try await test.produce(10_000, to: topic)

        let group = uniqueName("group")
        let first = try await test.consumer(group: group, topics: [topic])
        let messages = try await receive(10_000, from: first)
        #expect(messages.count == 10_000)
        #expect(Set(messages.map { String(decoding: $0.value ?? [], as: UTF8.self) }).count == 10_000)
        for partition in Set(messages.map(\.partition)) {
            let offsets = messages.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets == Array(offsets.first!...offsets.last!), "partition \(partition) out of order")
        }
        #expect(Set(messages.map(\.partition)) == [0, 1, 2, 3])
        let positions = nextOffsets(after: messages)
        try await first.commit(positions)
        let committed = try await first.committed(positions.map(\.topicPartition))
        #expect(Set(committed) == Set(positions))
        try await first.close()

        let sameGroup = try await test.consumer(group: group, topics: [topic])
        let replay = try await readAfterJoining(sameGroup, for: .seconds(3))
        #expect(replay.isEmpty, "a committed group got \(replay.count) messages again")
        try await sameGroup.close()

        let newGroup = try await test.consumer(group: uniqueName("group"), topics: [topic])
        #expect(try await receive(10_000, from: newGroup).count == 10_000)
        try await newGroup.close()
    }

    @Test("A commit for a partition the consumer does not own fails and commits nothing")
    func commitOfForeignPartitionFails() async throws {
        let test = try TestCluster()
        let topic = uniqueName("events")
        try await test.cluster.createTopic(topic, partitions: 2)
        try await test.produce(100, to: topic)
        let group = uniqueName("group")
        let consumer = try await test.consumer(group: group, topics: [topic])
        _ = try await receive(100, from: consumer)

        let foreign = TopicPartitionOffset(topic: "not-\(topic)", partition: 0, offset: 5)
        let owned = TopicPartitionOffset(topic: topic, partition: 0, offset: 1)
        let error = await #expect(throws: KafkaError.self) { try await consumer.commit([owned, foreign]) }
        #expect(error?.code == .notAssigned)
        let committed = try await consumer.committed([owned.topicPartition])
        #expect(committed.first?.offset == TopicPartitionOffset.invalidOffset, "part of a refused commit landed")
        try await consumer.close()
        await #expect(throws: KafkaError.self) { try await consumer.commit([owned]) }
    }

    @Test("An outsider's commit sets an empty group's start; a member then reads from there; a subscribed consumer may not use it")
    func outsiderCommit() async throws {
        let test = try TestCluster()
        let topic = uniqueName("events")
        try await test.cluster.createTopic(topic, partitions: 2)
        try await test.produce(100, to: topic)
        let group = uniqueName("group")
        let start = [TopicPartitionOffset(topic: topic, partition: 0, offset: 10), TopicPartitionOffset(topic: topic, partition: 1, offset: 20)]
        let outsider = try KafkaConsumer(configuration: test.consumerConfiguration(group: group), logger: test.logger)
        try await outsider.commitAsOutsider(start)
        #expect(Set(try await outsider.committed(start.map(\.topicPartition))) == Set(start))
        try await outsider.close()

        let member = try await test.consumer(group: group, topics: [topic])
        let messages = try await receive(70, from: member)
        for position in start {
            #expect(messages.filter { $0.topicPartition == position.topicPartition }.map(\.offset).min() == position.offset)
        }
        let error = await #expect(throws: KafkaError.self) { try await member.commitAsOutsider(start) }
        #expect(error?.code == .invalidArgument)
        try await member.close()
    }

    @Test("Headers round-trip byte-exact; a null key, a null header value and an empty value are kept apart")
    func headersAndNulls() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("headers")
        try await test.cluster.createTopic(topic, partitions: 1)
        let producer = try test.producer()
        let binary: [UInt8] = [0, 1, 2, 255, 254, 0, 10, 13]
        let headers = [
            KafkaHeader(key: "traceparent", string: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            KafkaHeader(key: "binary", value: binary), KafkaHeader(key: "null", value: nil),
            KafkaHeader(key: "empty", value: []), KafkaHeader(key: "binary", value: [7]),
        ]
        let first = try await producer.send(topic: topic, key: nil, value: [], headers: headers)
        try await producer.send(topic: topic, key: [], value: nil)
        try await producer.close()
        #expect(first.partition == 0 && first.offset == 0)

        let consumer = try await test.consumer(group: uniqueName("g"), topics: [topic])
        let messages = try await receive(2, from: consumer)
        try #require(messages.count == 2)
        #expect(messages[0].key == nil)
        #expect(messages[0].value == [])
        #expect(messages[0].headers == headers)
        #expect(messages[1].key == [])
        #expect(messages[1].value == nil)
        #expect(messages[0].timestamp != nil)
        try await consumer.close()
    }

    @Test("Pause stops delivery from a partition, resume restarts it; seek re-reads; watermarks report the end")
    func pauseResumeSeekWatermarks() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("flow")
        try await test.cluster.createTopic(topic, partitions: 2)
        let consumer = try await test.consumer(group: uniqueName("g"), topics: [topic])
        #expect(try await pollUntil([consumer]) { consumer.assignment.count == 2 })
        let paused = TopicPartition(topic: topic, partition: 0)
        try await consumer.pause([paused])
        try await test.produce(200, to: topic, keys: 200)

        let whilePaused = try await drain(consumer, for: .seconds(2))
        #expect(!whilePaused.isEmpty && whilePaused.allSatisfy { $0.partition == 1 })
        try await consumer.resume([paused])
        let afterResume = try await receive(200 - whilePaused.count, from: consumer)
        #expect(afterResume.allSatisfy { $0.partition == 0 })

        let marks = try await consumer.watermarks(of: paused)
        #expect(marks.low == 0 && marks.high == Int64(afterResume.count))
        try await consumer.seek([TopicPartitionOffset(paused, offset: marks.high - 3)])
        let replayed = try await receive(3, from: consumer)
        #expect(replayed.map(\.offset) == [marks.high - 3, marks.high - 2, marks.high - 1])
        await #expect(throws: KafkaError.self) {
            try await consumer.pause([TopicPartition(topic: topic, partition: 9)])
        }
        try await consumer.close()
    }
}
