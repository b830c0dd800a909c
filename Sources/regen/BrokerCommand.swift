import ArgumentParser
import Foundation
import Logging
import RdKafka

/// `regen broker`: an embedded Kafka cluster until interrupted.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run an embedded Kafka cluster (librdkafka's mock cluster) on 127.0.0.1 until Ctrl-C.",
        discussion: """
            Prints the bootstrap string on the first line of standard output, so scripts can \
            read it. Topics named with --topic are created first; others are auto-created with \
            4 partitions on first use. Data lives in memory only.

            Control commands, one per line on standard input, each answered with "ok" or \
            "error: ..." on standard output: down N, up N (broker N stops or resumes accepting \
            connections; leadership does not move), rtt N MS (delay broker N's responses), \
            errors API CODE[,CODE...] (the next requests of API fail with these librdkafka error \
            names, e.g. errors OffsetCommit REQUEST_TIMED_OUT,REQUEST_TIMED_OUT), clear API, \
            topic NAME PARTITIONS, leader TOPIC PARTITION N. Brokers are numbered from 1.
            """
    )

    @Option(help: "Number of brokers (1 or more).")
    var brokers: Int = 3

    @Option(name: .customLong("topic"), help: "Create a topic first, as NAME:PARTITIONS (repeatable).")
    var topics: [String] = []

    @Option(help: "Log level for the cluster's own log lines (trace, debug, info, notice, warning, error, critical).")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        guard brokers >= 1 else { throw ValidationError("--brokers must be 1 or more, got \(brokers)") }
        for spec in topics where TopicSpec(spec) == nil {
            throw ValidationError("--topic must be NAME:PARTITIONS with PARTITIONS >= 1, got '\(spec)'")
        }
    }

    func run() async throws {
        var logger = Logger(label: "regen.broker")
        logger.logLevel = logLevel
        let cluster = try EmbeddedCluster(brokers: brokers, logger: logger)
        for spec in topics.compactMap(TopicSpec.init) {
            try await cluster.createTopic(spec.name, partitions: spec.partitions)
        }
        // Unbuffered, so a script reading the first line gets it at once.
        FileHandle.standardOutput.write(Data((cluster.bootstrapServers + "\n").utf8))
        // Not awaited: the cluster runs until a signal, also after its input ends.
        Task { await cluster.serveControlCommands() }
        await waitForTermination()
        withExtendedLifetime(cluster) {}
    }
}

/// `NAME:PARTITIONS` from the command line.
struct TopicSpec {
    let name: String
    let partitions: Int

    init?(_ spec: String) {
        guard let colon = spec.lastIndex(of: ":"), let count = Int(spec[spec.index(after: colon)...]), count >= 1,
            colon != spec.startIndex
        else { return nil }
        name = String(spec[..<colon])
        partitions = count
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Suspends until SIGINT or SIGTERM arrives.
func waitForTermination() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = SignalOnce(continuation)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { once.fire() }
            source.resume()
            once.retain(source)
        }
    }
}

/// Resumes its continuation on the first signal only.
private final class SignalOnce: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func retain(_ source: any DispatchSourceSignal) { lock.withLock { sources.append(source) } }

    func fire() {
        let pending = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            defer { continuation = nil }
            return continuation
        }
        pending?.resume()
    }
}
