import ArgumentParser
import Foundation
import Logging
import RdKafka

@main
struct RegenBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regen-bench",
        abstract: "Measure regen against baselines taken in the same run (make bench, make soak).",
        discussion: """
            Starts an embedded 3-broker cluster in a process of its own (`regen-bench broker`, \
            which keeps the system's allocator where regen links jemalloc) and drives \
            the `regen` binary found next to this one as a user would, measuring from outside: \
            committed offsets read by an independent consumer, resident memory from /proc, the \
            processor's ledger for latency. The orchestrator and decoder scenarios run in this \
            process. Prints a table and writes the results as JSON and the scaling chart as SVG.
            """,
        subcommands: [Measure.self, Soak.self, BenchBroker.self], defaultSubcommand: Measure.self)
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "The regen executable (default: the one next to regen-bench).")
    var regen: String?

    @Option(help: "Where configurations, logs and outputs of the runs go (default: a new temporary directory).")
    var workDirectory: String?

    @Option(help: "The --log-level of the regen run processes (debug adds a timing line per cycle to their logs).")
    var regenLogLevel = "info"

    var regenURL: URL {
        URL(fileURLWithPath: regen ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("regen").path)
    }

    func makeWorkDirectory() throws -> URL {
        let url = URL(fileURLWithPath: workDirectory ?? NSTemporaryDirectory() + "regen-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct Measure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the benchmark scenarios (all by default) and report them against their baselines.")

    @OptionGroup var common: CommonOptions

    @Flag(help: "Tiny sizes, to check the harness itself (make test); the figures mean nothing.")
    var tiny = false

    @Option(help: "Scenarios to run, comma-separated: \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")).")
    var only: String?

    @Option(help: "Where the JSON results go.")
    var output = "bench-results.json"

    @Option(help: "Where the scaling chart goes (SVG); the renders chart (cycle time by subjects) goes beside it, as bench-renders.svg.")
    var chart = "docs/bench-scaling.svg"

    @Option(help: "The templates directory of the template scenario.")
    var templates = "examples/templates"

    func validate() throws {
        for name in only?.split(separator: ",") ?? [] where Scenario(rawValue: String(name)) == nil {
            throw ValidationError("--only: unknown scenario '\(name)'; known: \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard FileManager.default.isExecutableFile(atPath: common.regenURL.path) else {
            throw ValidationError("no regen executable at \(common.regenURL.path) (build it, or pass --regen)")
        }
    }

    func run() async throws {
        let selected = only.map { $0.split(separator: ",").compactMap { Scenario(rawValue: String($0)) } } ?? Scenario.allCases
        let bench = try await Bench(
            regen: common.regenURL, directory: try common.makeWorkDirectory(), scale: tiny ? .tiny : .full,
            templates: URL(fileURLWithPath: templates).path, chartPath: chart, regenLogLevel: common.regenLogLevel)
        defer { bench.broker.stop() }
        say("regen-bench \(tiny ? "tiny" : "full") run, revision \(bench.revision), \(bench.machine.cores) cores, librdkafka \(bench.machine.librdkafka)")
        say("work directory: \(bench.directory.path)")
        var results: [ScenarioResult] = []
        for scenario in selected {
            let start = ContinuousClock.now
            say("\n== \(scenario.rawValue)")
            let result = try await bench.run(scenario)
            results += result
            for r in result {
                say("   \(r.title): \(Report.format(r.figure)) \(r.unit) against \(Report.format(r.baseline.figure)) (\(r.baseline.name)): \(Report.format(r.ratio))×")
            }
            say("   (\(String(format: "%.1f", (ContinuousClock.now - start).seconds)) s)")
            try Report.writeJSON(results, to: output)
        }
        say("\n" + Report.table(results))
        say("\nresults: \(output)" + (selected.contains(.scaling) ? ", chart: \(chart)" : ""))
    }
}

struct Soak: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak", abstract: "Stream events at a steady rate into regen run and report its resident memory every minute.")

    @OptionGroup var common: CommonOptions

    @Option(help: "How long to stream, in minutes.")
    var minutes = 10.0

    @Option(help: "Events per second.")
    var rate = 20_000

    @Option(help: "Where the JSON report goes.")
    var output = "soak-results.json"

    func run() async throws {
        let bench = try await Bench(
            regen: common.regenURL, directory: try common.makeWorkDirectory(), scale: .full, templates: "", chartPath: "",
            regenLogLevel: common.regenLogLevel)
        defer { bench.broker.stop() }
        try await bench.soak(minutes: minutes, rate: rate, output: output)
    }
}

/// The benchmark scenarios, in the order they run.
enum Scenario: String, CaseIterable {
    case drain, parallel, overhead, decode, scaling, latency, template, renders
}

/// What every scenario shares: the broker process, the work directory, the scale.
final class Bench {
    let regen: URL
    let directory: URL
    let scale: Scale
    let templates: String
    let chartPath: String
    let regenLogLevel: String
    let broker: BrokerProcess
    let logger: Logger
    let revision: String
    let machine = Machine.current
    private var runs = 0

    init(regen: URL, directory: URL, scale: Scale, templates: String, chartPath: String, regenLogLevel: String) async throws {
        self.regenLogLevel = regenLogLevel
        self.regen = regen
        self.directory = directory
        self.scale = scale
        self.templates = templates
        self.chartPath = chartPath
        var logger = Logger(label: "regen-bench")
        logger.logLevel = .critical
        self.logger = logger
        broker = try await BrokerProcess.start()
        revision = await offThePool { Report.gitRevision() }
    }

    func run(_ scenario: Scenario) async throws -> [ScenarioResult] {
        switch scenario {
        case .drain: [try await drain()]
        case .parallel: [try await parallelIO()]
        case .overhead: try await overhead()
        case .decode: try decode()
        case .scaling: [try await scaling()]
        case .latency: [try await latency()]
        case .template: [try await template()]
        case .renders: [try await renders()]
        }
    }

    /// A result stamped with this run's revision, machine and date.
    func result(
        _ name: String, _ title: String, figure: Double, unit: String, figures: [String: Double], baseline: Baseline, ratio: Double,
        ratioMeaning: String, completed: Bool = true, counts: [String: Int], settings: [String: String]
    ) -> ScenarioResult {
        ScenarioResult(
            name: name, title: title, figure: figure, unit: unit, figures: figures, baseline: baseline, ratio: ratio,
            ratioMeaning: ratioMeaning, completed: completed, counts: counts, settings: settings, gitRevision: revision,
            machine: machine, date: ISO8601DateFormatter().string(from: Date()))
    }

    /// A fresh name for a run's group and files.
    func nextName(_ prefix: String) -> String {
        runs += 1
        return "\(prefix)-\(runs)-\(UUID().uuidString.prefix(6))"
    }

    /// The configuration of a `regen run` reading `topic` as `group`; default settings otherwise.
    func yaml(
        topic: String, group: String, processor: String, orchestrator: [String] = [], telemetry: String = "bench.telemetry",
        fetchWaitMaxMs: Int? = nil
    ) -> String {
        """
        kafka:
          bootstrapServers: "\(broker.bootstrapServers)"
          groupId: \(group)
          inputTopics: [\(topic)]\(fetchWaitMaxMs.map { "\n  fetchWaitMaxMs: \($0)" } ?? "")
        topics: { telemetry: \(telemetry), alerts: bench.alerts, deadLetter: bench.dlq }
        processor:
          \(processor)
        orchestrator:
          \(orchestrator.isEmpty ? "{}" : orchestrator.joined(separator: "\n  "))
        """
    }
}
