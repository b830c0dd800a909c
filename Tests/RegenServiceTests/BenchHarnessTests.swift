import Foundation
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The benchmark harness itself (make bench is not part of make test): every scenario at a
/// tiny size, checked for a complete JSON record whose counts add up. Figures are not checked.
@Suite("Benchmark harness", .timeLimit(.minutes(10)))
struct BenchHarnessTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("regen-bench run --tiny: every scenario, every field, counts that add up, the charts")
    func tinyRun() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regen-bench-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let results = directory.appendingPathComponent("results.json")
        let chart = directory.appendingPathComponent("chart.svg")
        let log = directory.appendingPathComponent("bench.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = RegenProcess.executable.deletingLastPathComponent().appendingPathComponent("regen-bench")
        process.arguments = [
            "run", "--tiny", "--output", results.path, "--chart", chart.path, "--work-directory", directory.appendingPathComponent("work").path,
            "--templates", Self.repository.appendingPathComponent("examples/templates").path,
        ]
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let end = ContinuousClock.now + .seconds(480)
        while process.isRunning && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(200)) }
        if process.isRunning { process.terminate() }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try #require(!process.isRunning && process.terminationStatus == 0, "regen-bench failed: \(output.suffix(3000))")

        let scenarios = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: results)) as? [[String: Any]])
        let byName = Dictionary(scenarios.map { (($0["name"] as? String) ?? "?", $0) }, uniquingKeysWith: { first, _ in first })
        #expect(Set(byName.keys) == ["drain", "parallel_io", "overhead_noop", "overhead_cpu", "decode", "decode_large", "scaling", "latency", "template", "renders"])
        for (name, scenario) in byName {
            for key in ["title", "figure", "unit", "figures", "baseline", "ratio", "ratioMeaning", "completed", "counts", "settings", "gitRevision", "machine", "date"] {
                #expect(scenario[key] != nil, "\(name) has no \(key)")
            }
            let machine = scenario["machine"] as? [String: Any] ?? [:]
            #expect((machine["cores"] as? Int ?? 0) >= 1 && (machine["memoryBytes"] as? Int ?? 0) > 0, "\(name): machine \(machine)")
            #expect((machine["librdkafka"] as? String ?? "").split(separator: ".").count >= 2, "\(name): librdkafka version")
            let figure = scenario["figure"] as? Double ?? .nan
            let baseline = (scenario["baseline"] as? [String: Any])?["figure"] as? Double ?? .nan
            let ratio = scenario["ratio"] as? Double ?? .nan
            #expect(figure.isFinite && figure > 0 && baseline.isFinite && baseline > 0, "\(name): \(figure) against \(baseline)")
            #expect(abs(ratio - figure / baseline) <= 1e-6 * max(1, abs(ratio)), "\(name): ratio \(ratio) is not \(figure) / \(baseline)")
            #expect(scenario["completed"] as? Bool == true, "\(name) hit its time limit; the harness said: \(output.suffix(4000))")
        }
        func counts(_ name: String) -> [String: Int] { byName[name]?["counts"] as? [String: Int] ?? [:] }
        for name in ["drain", "parallel_io", "template"] {
            #expect(counts(name)["produced"] != nil && counts(name)["committed"] == counts(name)["produced"], "\(name): \(counts(name))")
        }
        #expect(counts("drain")["kcat_read"] == counts("drain")["produced"])
        #expect(counts("template")["baseline_committed"] == counts("template")["produced"] && (counts("template")["renders"] ?? 0) > 0)
        #expect(counts("renders")["renders_50"] ?? 0 > 0 && counts("renders")["renders_200"] ?? 0 > 0, "\(counts("renders"))")
        for name in ["overhead_noop", "overhead_cpu"] { #expect(counts(name)["succeeded"] == counts(name)["events"], "\(name): \(counts(name))") }
        for name in ["decode", "decode_large"] { #expect(counts(name)["accepted"] == counts(name)["inputs"], "\(name): \(counts(name))") }
        let scaling = counts("scaling")
        for level in [1, 2, 4] { #expect(scaling["committed_\(level)"] != nil && scaling["committed_\(level)"] == scaling["produced_\(level)"]) }
        let latency = counts("latency")
        #expect(latency["processed"] == latency["produced"] && latency["committed"] == latency["produced"])
        #expect(latency["baseline_received"] == latency["produced"], "the bare consumer's counts: \(latency)")

        let parser = XMLParser(data: try Data(contentsOf: chart))
        #expect(parser.parse(), "the chart is not well-formed SVG")
        // The renders chart, beside the scaling chart: a bar per store size.
        let renders = try String(contentsOf: directory.appendingPathComponent("bench-renders.svg"), encoding: .utf8)
        #expect(XMLParser(data: Data(renders.utf8)).parse(), "the renders chart is not well-formed SVG")
        #expect(renders.contains("50 subjects:") && renders.contains("200 subjects:"))
    }
}
