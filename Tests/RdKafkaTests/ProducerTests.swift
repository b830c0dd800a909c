import RdKafka
import Synchronization
import Testing

@Suite("Producer against the embedded cluster", .timeLimit(.minutes(3)))
struct ProducerTests {
    @Test("With the only broker down, sends wait and complete once it is back: nothing is lost")
    func brokerDownThenUp() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("outage")
        try await test.cluster.createTopic(topic, partitions: 2)
        let producer = try test.producer(deliveryTimeout: .seconds(60))
        try await producer.send(topic: topic, key: [1], value: [1])  // connected, metadata known

        try await test.cluster.takeDown(broker: 1)
        let sends = Task {
            try await withThrowingTaskGroup(of: DeliveryReport.self) { group in
                for index in 0..<50 { group.addTask { try await producer.send(topic: topic, key: [UInt8(index)], value: [2]) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        try await Task.sleep(for: .seconds(2))
        #expect(producer.outstandingCount > 0, "records were acknowledged while the broker was down")
        try await test.cluster.bringUp(broker: 1)
        let reports = try await sends.value
        #expect(reports.count == 50)
        try await producer.close()

        let consumer = try await test.consumer(group: uniqueName("g"), topics: [topic])
        #expect(try await receive(51, from: consumer).count == 51)
        try await consumer.close()
    }

    @Test("With the broker down past the delivery timeout, the send fails with a clear error")
    func brokerDownPastTimeout() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("timeout")
        try await test.cluster.createTopic(topic, partitions: 1)
        let producer = try test.producer(deliveryTimeout: .seconds(2))
        try await producer.send(topic: topic, key: nil, value: [1])
        try await test.cluster.takeDown(broker: 1)
        let error = await #expect(throws: KafkaError.self) {
            try await producer.send(topic: topic, key: nil, value: [2])
        }
        #expect(error?.responseCode == .messageTimedOut)
        #expect(error?.isRetriable == true)
        try await test.cluster.bringUp(broker: 1)
        try await producer.close()
    }

    @Test("Produce errors injected by the broker are retried by the idempotent producer")
    func injectedProduceErrorsAreRetried() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("inject")
        try await test.cluster.createTopic(topic, partitions: 1)
        let producer = try test.producer()
        try await producer.send(topic: topic, key: nil, value: [0])
        try await test.cluster.injectErrors([.notLeaderForPartition, .requestTimedOut], for: .produce)
        for index in 1...5 { try await producer.send(topic: topic, key: nil, value: [UInt8(index)]) }
        try await producer.close()
        let consumer = try await test.consumer(group: uniqueName("g"), topics: [topic])
        let values = try await receive(6, from: consumer).compactMap { $0.value?.first }
        #expect(values == [0, 1, 2, 3, 4, 5])
        #expect(try await drain(consumer, for: .milliseconds(500)).isEmpty, "a retried record was written twice")
        try await consumer.close()
    }

    @Test("Closing a producer fails its outstanding sends instead of leaving them hanging")
    func closeFailsOutstanding() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("close")
        try await test.cluster.createTopic(topic, partitions: 1)
        let producer = try test.producer()
        try await producer.send(topic: topic, key: nil, value: [0])
        try await test.cluster.takeDown(broker: 1)
        let pending = Task { try await producer.send(topic: topic, key: nil, value: [1]) }
        // Close once the send is queued in librdkafka (it cannot be delivered: the broker is down).
        let end = ContinuousClock.now + .seconds(30)
        while producer.outstandingCount == 0 && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(10)) }
        #expect(producer.outstandingCount > 0)
        await #expect(throws: KafkaError.self) { try await producer.close(timeout: .milliseconds(500)) }
        await #expect(throws: KafkaError.self) { try await pending.value }
        await #expect(throws: KafkaError.self) { try await producer.send(topic: topic, key: nil, value: [2]) }
    }

    @Test("Sends racing close: each is acknowledged (and then in the topic) or fails; none crashes or hangs")
    func sendsRacingClose() async throws {
        let test = try TestCluster(brokers: 1)
        for round in 0..<3 {
            let topic = uniqueName("race")
            try await test.cluster.createTopic(topic, partitions: 1)
            let producer = try test.producer()
            try await producer.send(topic: topic, key: nil, value: [0])
            let counted = AcknowledgedCount()
            let sends = Task {
                await withTaskGroup(of: Int.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            var acknowledged = 0
                            while (try? await producer.send(topic: topic, key: nil, value: [1])) != nil {
                                acknowledged += 1
                                counted.add()
                            }
                            return acknowledged
                        }
                    }
                    return await group.reduce(0, +)
                }
            }
            // Close while the senders are busy: once some sends have landed, a little later each round.
            while counted.value < 10 { try await Task.sleep(for: .milliseconds(5)) }
            try await Task.sleep(for: .milliseconds(round * 20))
            try? await producer.close(timeout: .milliseconds(200))
            let acknowledged = await sends.value
            await #expect(throws: KafkaError.self) { try await producer.send(topic: topic, key: nil, value: [2]) }
            let consumer = try await test.consumer(group: uniqueName("g"), topics: [topic])
            let records = try await receive(1 + acknowledged, from: consumer)
            #expect(records.count == 1 + acknowledged, "round \(round)")
            try await consumer.close()
        }
    }

    @Test("A producer that failed fatally says so on every send, instead of failing each record with its symptom")
    func fatalErrorIsReported() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("fatal")
        try await test.cluster.createTopic(topic, partitions: 1)
        // Refused authorization for its producer id is fatal to an idempotent producer.
        try await test.cluster.injectErrors([KafkaResponseCode(rawValue: 31)], for: KafkaAPIKey(rawValue: 22))
        let producer = try test.producer()
        let first = await #expect(throws: KafkaError.self) { try await producer.send(topic: topic, key: nil, value: [1]) }
        let second = await #expect(throws: KafkaError.self) { try await producer.send(topic: topic, key: nil, value: [2]) }
        #expect(first?.isFatal == true, "\(String(describing: first))")
        #expect(second?.isFatal == true, "\(String(describing: second))")
        try? await producer.close(timeout: .seconds(1))
    }
}

/// Sends acknowledged so far, shared by the sending tasks.
private final class AcknowledgedCount: Sendable {
    private let count = Atomic(0)
    var value: Int { count.load(ordering: .acquiring) }
    func add() { count.add(1, ordering: .releasing) }
}
