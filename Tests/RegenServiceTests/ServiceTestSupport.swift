import Foundation
import Logging
import Orchestration
import RdKafka
import RegenService
import Synchronization

/// An embedded cluster, a work folder, and `regen run` processes started against them.
final class ServiceFixture: Sendable {
    let cluster: EmbeddedCluster
    let logger: Logger
    let directory: URL
    let input = "regen.changes"
    let partitions: Int
    let group: String

    /// - Parameters:
    ///   - partitions: of the input topic.
    ///   - outputPartitions: of the telemetry, alert and dead-letter topics.
    init(partitions: Int = 8, outputPartitions: Int = 2) async throws {
        var logger = Logger(label: "service-test")
        logger.logLevel = .critical
        self.logger = logger
        self.partitions = partitions
        cluster = try EmbeddedCluster(brokers: 3, logger: logger)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("regen-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        group = "regen-\(UUID().uuidString.prefix(6))"
        try await cluster.createTopic(input, partitions: partitions)
        for topic in ["regen.telemetry", "regen.alerts", "regen.dlq"] { try await cluster.createTopic(topic, partitions: outputPartitions) }
    }

    var ledgerPath: String { directory.appendingPathComponent("ledger.txt").path }

    /// Writes a configuration with the test settings DESIGN.md asks for; `orchestrator` adds
    /// lines to that section, `simulate` entries to the simulate processor's map; `processor`
    /// replaces the processor section's body (the simulate processor with a ledger by default).
    func writeConfig(
        orchestrator: [String] = [], simulate: String = "", name: String = "regen.yaml", group: String? = nil, ledger: String? = nil,
        processor: String? = nil
    ) throws -> String {
        // Defaults the test did not override (a repeated YAML key is an error).
        let defaults = ["healthCheckIntervalSecs: 0", "eventTimeoutMs: 5000"].filter { line in
            !orchestrator.contains { $0.hasPrefix(line.prefix { $0 != ":" } + ":") }
        }
        let yaml = """
            kafka:
              bootstrapServers: "\(cluster.bootstrapServers)"
              groupId: \(group ?? self.group)
              inputTopics: [\(input)]
              sessionTimeoutMs: 6000
              fetchWaitMaxMs: 20
            processor:
              \(processor ?? "type: simulate\n  simulate: { ledger: \(ledger ?? ledgerPath)\(simulate.isEmpty ? "" : ", " + simulate) }")
            service:
              revocationTimeoutMs: 5000
              shutdownTimeoutMs: 20000
            orchestrator:
            \((defaults + orchestrator).map { "  " + $0 }.joined(separator: "\n"))
            """
        let path = directory.appendingPathComponent(name).path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Starts `regen run` with the configuration at `config`. Its HTTP endpoints take a free
    /// port (``RegenProcess/httpPort``: tests wait on its metrics, not on its log lines)
    /// unless `arguments` set `service.http.address`.
    /// `environment` is added to the test's own.
    func start(config: String, arguments: [String] = [], name: String = "run", environment: [String: String] = [:]) throws -> RegenProcess {
        let given = arguments.first { $0.hasPrefix("service.http.address=") }
        let port = try given.flatMap { $0.split(separator: ":").last.flatMap { Int($0) } } ?? freePort()
        let http = given == nil ? ["--set", "service.http.address=127.0.0.1:\(port)"] : []
        return try RegenProcess(
            arguments: ["run", "--config", config, "--log-level", "info"] + http + arguments, httpPort: port,
            log: directory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(4)).log"), environment: environment)
    }

    func produce(_ range: Range<Int>, malformedRatio: Double = 0, keys: Int = 200) async throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: cluster.connection()), logger: logger)
        try await ChangeEventGenerator(keys: keys, malformedRatio: malformedRatio).send(range, to: input, with: producer)
        try await producer.close()
    }

    /// Produces records `range` as `produce` does and returns where each one landed:
    /// partition, then offset, to event id.
    func produceTracked(_ range: Range<Int>) async throws -> [Int: [Int64: String]] {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: cluster.connection()), logger: logger)
        let generator = ChangeEventGenerator(keys: 200)
        let reports = try await generator.send(range, to: input, with: producer)
        try await producer.close()
        var positions: [Int: [Int64: String]] = [:]
        for (index, report) in zip(range, reports) { positions[report.partition, default: [:]][report.offset] = generator.id(index) }
        return positions
    }

    /// The ids of the events below each partition's committed offset in `progress`;
    /// `positions` is what ``produceTracked(_:)`` returned.
    static func committedIDs(_ progress: [(committed: Int64, end: Int64)], positions: [Int: [Int64: String]]) -> Set<String> {
        var ids: Set<String> = []
        for (partition, position) in progress.enumerated() {
            for offset in 0..<max(0, position.committed) {
                if let id = positions[partition]?[offset] { ids.insert(id) }
            }
        }
        return ids
    }

    /// Event ids in the processor's ledger, with repeats.
    func ledger(at path: String? = nil) -> [String] {
        guard let text = try? String(contentsOfFile: path ?? ledgerPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }

    /// Per partition of the input topic: (committed offset of the service's group, end offset).
    func commitProgress(group: String? = nil) async throws -> [(committed: Int64, end: Int64)] {
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(connection: cluster.connection(), groupID: group ?? self.group), logger: logger)
        let partitions = (0..<partitions).map { TopicPartition(topic: input, partition: $0) }
        let committed = try await probe.committed(partitions)
        var result: [(Int64, Int64)] = []
        for position in committed.sorted(by: { $0.partition < $1.partition }) {
            result.append((position.offset, try await probe.watermarks(of: position.topicPartition).high))
        }
        try await probe.close()
        return result
    }

    /// Partitions of `topic` (of `count`) whose oldest records the embedded broker has
    /// deleted: it keeps only a few megabytes per partition, and a scenario that overflows
    /// that would count the deleted records as lost.
    func truncatedPartitions(of topic: String, count: Int) async throws -> [Int] {
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(connection: cluster.connection(), groupID: "probe-\(UUID().uuidString.prefix(6))"),
            logger: logger)
        var truncated: [Int] = []
        for partition in 0..<count where try await probe.watermarks(of: TopicPartition(topic: topic, partition: partition)).low > 0 {
            truncated.append(partition)
        }
        try await probe.close()
        return truncated
    }

    /// Waits until every partition's committed offset reached its end.
    /// Waits until the processor's ledger holds at least `count` events.
    func waitUntilProcessed(atLeast count: Int, within limit: Duration = .seconds(60)) async throws -> Bool {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if ledger().count >= count { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Waits until the ledger has not grown for `quiet` (processing stopped); false if it
    /// kept growing for all of `limit`.
    func waitUntilLedgerStalls(for quiet: Duration, within limit: Duration) async throws -> Bool {
        let end = ContinuousClock.now + limit
        var count = ledger().count
        var since = ContinuousClock.now
        while ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(100))
            let now = ledger().count
            if now != count { (count, since) = (now, .now) }
            if ContinuousClock.now - since >= quiet { return true }
        }
        return false
    }

    func waitUntilCommitted(within limit: Duration = .seconds(120)) async throws -> Bool {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if try await commitProgress().allSatisfy({ $0.committed == $0.end }) { return true }
            try await Task.sleep(for: .milliseconds(500))
        }
        return false
    }

    /// Every record of `topic` (read by a fresh group until `count` arrived or it goes quiet).
    func readAll(_ topic: String, expecting count: Int? = nil, quiet: Duration = .seconds(3)) async throws -> [KafkaMessage] {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                connection: cluster.connection(), groupID: "reader-\(UUID().uuidString.prefix(6))",
                sessionTimeout: .seconds(6), fetchWaitMax: .milliseconds(20)),
            logger: logger)
        try await consumer.subscribe([topic])
        var messages: [KafkaMessage] = []
        var lastArrival = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(200))
            // Quiet counts from the first assignment: joining the group takes seconds.
            if !batch.isEmpty || consumer.assignment.isEmpty { lastArrival = .now }
            messages += batch
            if let count, messages.count >= count { break }
            if count == nil, ContinuousClock.now - lastArrival > quiet { break }
        }
        try await consumer.close()
        return messages
    }

    /// Ids of the good (well-formed) events among records `range`.
    func goodIDs(_ range: Range<Int>, malformedRatio: Double = 0) -> Set<String> {
        let generator = ChangeEventGenerator(keys: 200, malformedRatio: malformedRatio)
        return Set(range.filter { !generator.isMalformed($0) }.map(generator.id))
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// A `regen` child process with its output in a log file.
final class RegenProcess: Sendable {
    private let process: Process
    let log: URL
    /// Where its HTTP endpoints listen.
    let httpPort: Int?

    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("regen")
    }

    init(arguments: [String], httpPort: Int? = nil, log: URL, environment: [String: String] = [:]) throws {
        self.httpPort = httpPort
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given } }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        self.log = log
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    var isRunning: Bool { process.isRunning }

    /// Waits for the process to exit and returns its status (or nil if it did not in time).
    func waitForExit(within limit: Duration = .seconds(60)) async -> Int32? {
        let end = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// A sample of its `/metrics` now; nil when it does not answer.
    func metric(_ name: String, _ labels: [String: String] = [:]) async -> Double? {
        guard let httpPort, let answer = try? await get(httpPort, "/metrics"), answer.status == 200 else { return nil }
        return PrometheusText(answer.text)[name, labels]
    }

    /// Waits until the sample `name` (with `labels`) of its `/metrics` satisfies `accept`.
    func waitForMetric(
        _ name: String, _ labels: [String: String] = [:], within limit: Duration = .seconds(60), _ accept: (Double) -> Bool
    ) async -> Bool {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if let value = await metric(name, labels), accept(value) { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Waits until it has finished a cycle.
    func waitForCycle(within limit: Duration = .seconds(60)) async -> Bool {
        await waitForMetric("regen_cycles_total", within: limit) { $0 >= 1 }
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

