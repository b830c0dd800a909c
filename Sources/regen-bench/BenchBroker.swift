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
            Prints the bootstrap string on the first line of standard output, then serves the \
            control commands of `regen broker` (see its help) on standard input until its end \
            (the harness stops it with SIGTERM).
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
        await cluster.serveControlCommands()
        withExtendedLifetime(cluster) {}
    }
}
