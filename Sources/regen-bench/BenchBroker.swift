import ArgumentParser
import Foundation
import Logging
import RdKafka

/// `regen-bench broker`: the benchmark's embedded cluster, in a process of its own so its
/// CPU is not the harness's. Not `regen broker`: librdkafka's mock cluster serves `kcat`
/// about half as fast under jemalloc, which regen links (Package.swift), or under glibc's
/// default settings (0.8-0.9 million events/s instead of 1.4-1.9 million), so the kcat
/// baseline would fall with the allocator of the program it is the baseline for. Here the
/// cluster runs under glibc with the settings `regen broker` had until regen took jemalloc,
/// the ones every earlier baseline was measured with: two arenas, and blocks of 128 KiB
/// and more mapped on their own.
struct BenchBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "The benchmark's embedded cluster (started by the scenarios; not for direct use).",
        discussion: """
            Prints the bootstrap string on the first line of standard output, then reads one \
            command per line on standard input, `topic NAME PARTITIONS`, and answers each with \
            "ok" or "error: ..." on standard output. Ends at the end of its input (the harness stops it with SIGTERM).
            """,
        shouldDisplay: false)

    @Option(help: "Number of brokers (1 or more).")
    var brokers = 3

    func validate() throws {
        guard brokers >= 1 else { throw ValidationError("--brokers must be 1 or more, got \(brokers)") }
    }

    func run() async throws {
        Librdkafka.useBaselineMallocSettings()
        var logger = Logger(label: "regen-bench.broker")
        logger.logLevel = .warning
        let cluster = try EmbeddedCluster(brokers: brokers, logger: logger)
        FileHandle.standardOutput.write(Data((cluster.bootstrapServers + "\n").utf8))
        while let line = await offThePool({ readLine() }) {
            let words = line.split(separator: " ")
            let answer: String
            if words.count == 3, words[0] == "topic", let partitions = Int(words[2]), partitions >= 1 {
                do {
                    try await cluster.createTopic(String(words[1]), partitions: partitions)
                    answer = "ok"
                } catch {
                    answer = "error: \(error)"
                }
            } else {
                answer = "error: unknown command '\(line)'; the only one is: topic NAME PARTITIONS"
            }
            FileHandle.standardOutput.write(Data((answer + "\n").utf8))
        }
        withExtendedLifetime(cluster) {}
    }
}
