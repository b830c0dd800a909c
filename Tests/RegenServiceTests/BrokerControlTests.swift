import Foundation
import Logging
import RdKafka
import Testing

@Suite("regen broker control commands", .timeLimit(.minutes(2)))
struct BrokerControlTests {
    /// `regen broker` with a pipe on standard input and its output collected line by line.
    final class BrokerProcess: @unchecked Sendable {  // `lines` guarded by `lock`
        let process = Process()
        let input = Pipe()
        let output = Pipe()
        private let lock = NSLock()
        private var lines: [String] = []

        init(brokers: Int) throws {
            process.executableURL = RegenProcess.executable
            process.arguments = ["broker", "--brokers", String(brokers)]
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            output.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let text = String(decoding: handle.availableData, as: UTF8.self)
                self?.lock.withLock { self?.lines += text.split(separator: "\n").map(String.init) }
            }
            try process.run()
        }

        func line(_ index: Int, within limit: Duration = .seconds(20)) async -> String? {
            let end = ContinuousClock.now + limit
            while ContinuousClock.now < end {
                if let line = lock.withLock({ index < lines.count ? lines[index] : nil }) { return line }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return nil
        }

        func send(_ command: String) throws { try input.fileHandleForWriting.write(contentsOf: Data((command + "\n").utf8)) }

        deinit { process.terminate() }
    }

    @Test("Commands change the cluster and are answered ok, or error with what is allowed")
    func commands() async throws {
        let broker = try BrokerProcess(brokers: 1)
        let bootstrap = try #require(await broker.line(0))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let connection = KafkaConnection(bootstrapServers: bootstrap.split(separator: ",").map(String.init))

        try broker.send("topic controlled 12")
        #expect(await broker.line(1) == "ok")
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(connection: connection, groupID: "g"), logger: logger)
        let marks = try await consumer.watermarks(of: TopicPartition(topic: "controlled", partition: 11))
        #expect(marks.high == 0, "partition 11 of the new topic exists")

        try broker.send("down 1")
        #expect(await broker.line(2) == "ok")
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(connection: connection, deliveryTimeout: .seconds(30)), logger: logger)
        let pending = Task { try await producer.send(topic: "controlled", key: nil, value: [1], partition: 0) }
        try await Task.sleep(for: .seconds(1))
        #expect(producer.outstandingCount == 1, "delivered while the only broker was down")
        try broker.send("up 1")
        #expect(await broker.line(3) == "ok")
        #expect(try await pending.value.offset == 0)

        try broker.send("errors OffsetCommit REQUEST_TIMED_OUT,NOT_COORDINATOR")
        #expect(await broker.line(4) == "ok")
        try broker.send("errors Fetch NO_SUCH_ERROR")
        #expect(await broker.line(5)?.hasPrefix("error: ") == true)
        try broker.send("explode 1")
        #expect(await broker.line(6)?.contains("commands: down N | up N") == true)
        try await producer.close()
        try await consumer.close()
    }
}
