import Foundation
import Logging
import RdKafka

/// `regen-bench broker` (``BenchBroker``) in its own process: the embedded cluster the
/// benchmark's `regen run` processes and its own clients talk to.
final class BrokerProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private(set) var bootstrapServers = ""

    /// Starts `regen-bench broker` (this executable) and reads its bootstrap line.
    static func start(brokers: Int = 3) async throws -> BrokerProcess {
        let broker = BrokerProcess()
        broker.process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        broker.process.arguments = ["broker", "--brokers", String(brokers)]
        broker.process.standardInput = broker.input
        broker.process.standardOutput = broker.output
        broker.process.standardError = FileHandle.nullDevice
        try broker.process.run()
        guard let line = await broker.readLine(), line.contains(":") else {
            broker.process.terminate()
            throw BenchError("regen-bench broker did not print its bootstrap servers")
        }
        broker.bootstrapServers = line
        return broker
    }

    private init() {}

    var connection: KafkaConnection { KafkaConnection(bootstrapServers: bootstrapServers.split(separator: ",").map(String.init)) }

    /// Sends a control command (`topic NAME PARTITIONS`, ...) and waits for its answer.
    func control(_ command: String) async throws {
        input.fileHandleForWriting.write(Data((command + "\n").utf8))
        guard let answer = await readLine(), answer == "ok" else {
            throw BenchError("regen-bench broker refused '\(command)'")
        }
    }

    /// The broker's next line of output, read off the cooperative pool (the read blocks).
    private func readLine() async -> String? {
        let handle = output.fileHandleForReading
        return await offThePool {
            var bytes: [UInt8] = []
            while true {
                guard let byte = handle.readData(ofLength: 1).first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
                if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
                bytes.append(byte)
            }
        }
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// One `regen run` child process with its configuration and log in the work directory.
final class RegenRun {
    private let process = Process()
    let log: URL
    let startedAt = ContinuousClock.now

    /// Writes `yaml` next to the log and starts `regen run` with it.
    init(regen: URL, yaml: String, directory: URL, name: String, logLevel: String = "info") throws {
        let config = directory.appendingPathComponent("\(name).yaml")
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        log = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = regen
        // Instances run side by side: each serves its HTTP endpoints on a free port.
        process.arguments = ["run", "--config", config.path, "--log-level", logLevel, "--set", "service.http.address=127.0.0.1:0"]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// The time of the first assignment, seen in the log.
    /// - Throws: `BenchError` naming the log, after stopping the run, when none came within `limit`.
    func assignment(within limit: Duration = .seconds(90)) async throws -> ContinuousClock.Instant {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end && process.isRunning {
            if let text = try? String(contentsOf: log, encoding: .utf8), text.contains("event=assigned") { return .now }
            try? await Task.sleep(for: .milliseconds(20))
        }
        await stop()
        throw BenchError("regen run got no assignment within \(limit); its log: \(log.path)")
    }

    /// The log's lines above info (warnings, errors), the last `count` of them.
    func problems(last count: Int = 20) -> [String] {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").filter { [" warning ", " error ", " critical "].contains(where: $0.contains) }
        return lines.suffix(count).map(String.init)
    }

    /// Peak and current resident memory in bytes (VmHWM, VmRSS of /proc/PID/status).
    func memory() -> (peak: Int, current: Int) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmHWM"), field("VmRSS"))
    }

    /// SIGTERM, then waits for the exit; the exit status.
    @discardableResult
    func stop(within limit: Duration = .seconds(60)) async -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, SIGTERM)
        let end = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// Reads a group's committed offsets over time, from outside the process that commits them.
final class CommitWatcher {
    private let probe: KafkaConsumer
    private let partitions: [TopicPartition]
    /// (time, events committed) after each reading.
    private(set) var samples: [(time: ContinuousClock.Instant, committed: Int)] = []

    init(connection: KafkaConnection, group: String, topic: String, partitions: Int, logger: Logger) throws {
        probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(connection: connection, groupID: group), logger: logger)
        self.partitions = (0..<partitions).map { TopicPartition(topic: topic, partition: $0) }
    }

    /// Events committed now: the sum of the committed offsets (all topics start at 0).
    func committed() async throws -> Int {
        try await probe.committed(partitions).reduce(0) { $0 + Int(max(0, $1.offset)) }
    }

    /// Reads every `interval` until `target` events are committed or `deadline` passes.
    /// - Returns: whether the target was reached.
    func watch(until target: Int, deadline: ContinuousClock.Instant, interval: Duration = .milliseconds(100)) async throws -> Bool {
        while ContinuousClock.now < deadline {
            let count = try await committed()
            samples.append((.now, count))
            if count >= target { return true }
            try await Task.sleep(for: interval)
        }
        return false
    }

    /// Each partition's committed offset against its end, for a run that did not complete:
    /// `topic[p] committed/end` for the partitions behind.
    func behind() async -> String {
        guard let committed = try? await probe.committed(partitions) else { return "committed offsets unreadable" }
        var lines: [String] = []
        for position in committed {
            guard let end = try? await probe.watermarks(of: position.topicPartition).high else { continue }
            if position.offset < end { lines.append("\(position.topicPartition) committed \(position.offset) of \(end)") }
        }
        return lines.isEmpty ? "no partition behind" : lines.joined(separator: "; ")
    }

    /// The first time at least `count` events were committed.
    func time(reaching count: Int) -> ContinuousClock.Instant? { samples.first { $0.committed >= count }?.time }

    func close() async { try? await probe.close() }
}

/// Runs blocking work (a pipe read, a child's exit) on a Dispatch thread, never on the cooperative pool.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in DispatchQueue.global().async { continuation.resume(returning: body()) } }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
