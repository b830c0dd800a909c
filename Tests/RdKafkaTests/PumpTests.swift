import Synchronization
import Testing

@testable import RdKafka

@Suite("When the consumer's pump wakes librdkafka's fetchers")
struct RefillTests {
    @Test("Once the queue was full and has fallen below half, once per filling")
    func afterFullBelowHalf() {
        let refill = KafkaConsumer.Refill(threshold: 1000)
        // Never full yet: a low queue is librdkafka still fetching, not asleep.
        #expect(!refill.observe(queued: 0))
        #expect(!refill.observe(queued: 400))
        #expect(!refill.observe(queued: 999))
        #expect(!refill.observe(queued: 1000))  // full: the fetchers stop
        #expect(!refill.observe(queued: 700))  // above half: plenty left
        #expect(!refill.observe(queued: 500))
        #expect(refill.observe(queued: 499))  // below half: wake them
        #expect(!refill.observe(queued: 200))  // woken already for this filling
        #expect(!refill.observe(queued: 0))
        #expect(!refill.observe(queued: 1200))  // full again
        #expect(refill.observe(queued: 0))
    }
}

@Suite("Consumer pump against the embedded cluster", .timeLimit(.minutes(3)))
struct PumpBrokerTests {
    @Test("Delivers every message once, each partition in offset order, through a queue far smaller than the topic, batches within each limit")
    func drains() async throws {
        let test = try TestCluster()
        let topic = uniqueName("pump")
        try await test.cluster.createTopic(topic, partitions: 4)
        try await test.produce(20_000, to: topic)
        var configuration = test.consumerConfiguration(group: uniqueName("group"))
        configuration.prefetchMessages = 500  // the queue fills and is refilled some 40 times
        let consumer = try KafkaConsumer(configuration: configuration, logger: test.logger)
        try await consumer.subscribe([topic])
        let received = Mutex<[KafkaMessage]>([])
        let oversized = Atomic(0)
        let end = ContinuousClock.now + .seconds(90)
        try await consumer.pump(timeout: .milliseconds(100)) {
            received.withLock { $0.count } < 20_000 && ContinuousClock.now < end ? 700 : nil
        } deliver: { batch in
            if batch.count > 700 { oversized.add(1, ordering: .relaxed) }
            received.withLock { $0 += batch }
        }
        let messages = received.withLock { $0 }
        #expect(messages.count == 20_000)
        #expect(Set(messages.map { String(decoding: $0.value ?? [], as: UTF8.self) }).count == 20_000)
        for partition in Set(messages.map(\.partition)) {
            let offsets = messages.filter { $0.partition == partition }.map(\.offset)
            #expect(offsets == Array(offsets.first!...offsets.last!), "partition \(partition) out of order or with gaps")
        }
        #expect(oversized.load(ordering: .relaxed) == 0, "a batch held more than its limit")
        try await consumer.close()
    }

    @Test("A close during a pump ends it with an error, and the close completes")
    func closeEndsPump() async throws {
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("pump-close")
        try await test.cluster.createTopic(topic, partitions: 1)
        let consumer = try await test.consumer(group: uniqueName("group"), topics: [topic])
        let started = Atomic(false)
        let pump = Task {
            try await consumer.pump(timeout: .milliseconds(100)) {
                started.store(true, ordering: .releasing)
                return 100
            } deliver: { _ in }
        }
        while !started.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
        try await consumer.close()
        await #expect(throws: KafkaError.self) { try await pump.value }
    }
}
