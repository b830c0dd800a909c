import Foundation
import Logging
import Orchestration
import Regeneration
import RegenService

/// Sinks that keep nothing: the orchestrator scenario measures the orchestrator.
private struct NullTelemetry: TelemetrySink {
    func emit(_ event: TelemetryEvent) async {}
}

private struct NullDeadLetters: DeadLetterSink {
    func deadLetter(_ letter: DeadLetter) async throws {}
}

extension Bench {
    // MARK: 3. Overhead against a plain loop

    func overhead() async throws -> [ScenarioResult] {
        let noop = try SimulatedProcessor(work: .none)
        let iterations = try await calibrateCPUIterations(microseconds: 100)
        let cpu = try SimulatedProcessor(work: .cpu(iterations: iterations))
        let noopResult = try await overhead(
            "overhead_noop", "3a. orchestrator per no-op event", processor: noop, events: scale.overheadNoopEvents, work: "none")
        let cpuResult = try await overhead(
            "overhead_cpu", "3b. orchestrator with ~100 µs CPU events", processor: cpu, events: scale.overheadCPUEvents,
            work: "cpu, \(iterations) iterations (~100 µs)")
        return [noopResult, cpuResult]
    }

    private func overhead(_ name: String, _ title: String, processor: SimulatedProcessor, events: Int, work: String) async throws -> ScenarioResult {
        let generator = ChangeEventGenerator(keys: 1000, idPrefix: "ovh")
        let records = (0..<events).map { index -> CycleRecord in
            let (key, value) = generator.record(index)
            return CycleRecord(position: SourcePosition(topic: "bench", partition: 0, offset: Int64(index)), key: key, value: value)
        }
        var quiet = Logger(label: "regen-bench.orchestrator")
        quiet.logLevel = .critical
        let config = OrchestratorConfig(concurrency: 1, adaptiveOptimization: false, healthCheckIntervalSecs: 0)
        let orchestrator = try RegenerationOrchestrator(
            config: config, processor: processor, telemetry: NullTelemetry(), deadLetters: NullDeadLetters(), logger: quiet)
        try await orchestrator.start()
        let cycleSize = 1000
        var done = 0
        let start = ContinuousClock.now
        for first in stride(from: 0, to: records.count, by: cycleSize) {
            let result = try await orchestrator.executeCycle(Cycle(records: Array(records[first..<min(records.count, first + cycleSize)])))
            done += result.execution.tasksSucceeded
        }
        let orchestrated = ContinuousClock.now - start
        await orchestrator.stop()

        let decoded = try records.map { try ChangeEvent.decode($0.value) }
        let context = EventContext(
            position: SourcePosition(topic: "bench", partition: 0, offset: 0), key: "", attempt: 1, traceparent: nil, executionID: "plain")
        let plainStart = ContinuousClock.now
        for event in decoded { _ = try await processor.process(event, context: context) }
        let plain = ContinuousClock.now - plainStart

        let perEvent = orchestrated.seconds / Double(events) * 1e6
        let plainPerEvent = plain.seconds / Double(events) * 1e6
        return result(
            name, title, figure: perEvent, unit: "µs per event",
            figures: [
                "us_per_event": perEvent, "overhead_us_per_event": perEvent - plainPerEvent,
                "overhead_percent": (perEvent - plainPerEvent) / plainPerEvent * 100, "seconds": orchestrated.seconds,
            ],
            baseline: Baseline(name: "plain loop", figure: plainPerEvent, figures: ["us_per_event": plainPerEvent, "seconds": plain.seconds]),
            ratio: perEvent / plainPerEvent, ratioMeaning: "orchestrator ÷ plain loop (decoding is the orchestrator's)",
            counts: ["events": events, "succeeded": done, "plain_loop": decoded.count],
            settings: [
                "concurrency": "1", "cycle": "\(cycleSize) events", "work": work,
                "plain_loop": "the same processor over the same events, decoded beforehand",
            ])
    }

    /// Hashing rounds of the `cpu` work that take about `microseconds`.
    private func calibrateCPUIterations(microseconds: Double) async throws -> Int {
        let probe = 100_000
        let processor = try SimulatedProcessor(work: .cpu(iterations: probe))
        let event = ChangeEvent(id: "calibrate", changeType: .nodeUpdated, subject: "s")
        let context = EventContext(
            position: SourcePosition(topic: "t", partition: 0, offset: 0), key: "s", attempt: 1, traceparent: nil, executionID: "c")
        var best = Double.infinity
        for _ in 0..<5 {
            let start = ContinuousClock.now
            _ = try await processor.process(event, context: context)
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        return max(1, Int(Double(probe) * microseconds / (best * 1e6)))
    }

    // MARK: 4. Decode

    func decode() throws -> [ScenarioResult] {
        let generator = ChangeEventGenerator(keys: 1000, idPrefix: "dec")
        let realistic = (0..<scale.decodeEvents).map { generator.record($0).value }
        var properties: [String: JSONValue] = [:]
        for index in 0..<40 { properties["field_\(index)"] = .string(String(repeating: "value \(index) ", count: 24)) }
        let large = (0..<max(1, scale.decodeEvents / 10)).map { index -> [UInt8] in
            let event = ChangeEvent(id: "large-\(index)", changeType: .nodeUpdated, subject: "node-\(index)", properties: properties)
            return Array((try? JSONEncoder().encode(event)) ?? Data())
        }
        return [
            try decode("decode", "4a. decode, realistic events", realistic),
            try decode("decode_large", "4b. decode, 10 KB events", large),
        ]
    }

    private func decode(_ name: String, _ title: String, _ inputs: [[UInt8]]) throws -> ScenarioResult {
        let bytes = inputs.reduce(0) { $0 + $1.count } / max(1, inputs.count)
        func rate(_ body: ([UInt8]) throws -> Bool) rethrows -> (perSecond: Double, accepted: Int) {
            var decoded = 0
            var accepted = 0
            let start = ContinuousClock.now
            repeat {
                for input in inputs where try body(input) { accepted += 1 }
                decoded += inputs.count
            } while (ContinuousClock.now - start).seconds < scale.decodeSeconds
            return (Double(decoded) / (ContinuousClock.now - start).seconds, accepted / (decoded / inputs.count))
        }
        let production = rate { (try? ChangeEvent.decode($0)) != nil }
        let serialization = rate { (try? JSONSerialization.jsonObject(with: Data($0))) != nil }
        let decoder = JSONDecoder()
        let foundation = rate { (try? decoder.decode(ChangeEvent.self, from: Data($0))) != nil }
        return result(
            name, title, figure: production.perSecond, unit: "events/s on one core",
            figures: [
                "events_per_s": production.perSecond, "json_decoder_events_per_s": foundation.perSecond,
                "ratio_to_json_decoder": production.perSecond / foundation.perSecond, "bytes_per_event": Double(bytes),
            ],
            baseline: Baseline(name: "JSONSerialization", figure: serialization.perSecond, figures: ["events_per_s": serialization.perSecond]),
            ratio: production.perSecond / serialization.perSecond, ratioMeaning: "ChangeEvent.decode ÷ JSONSerialization (no typed value)",
            counts: [
                "inputs": inputs.count, "accepted": production.accepted, "accepted_by_json_serialization": serialization.accepted,
                "accepted_by_json_decoder": foundation.accepted,
            ],
            settings: ["bytes_per_event": "\(bytes)", "seconds_per_decoder": "\(scale.decodeSeconds)", "threads": "1"])
    }
}

extension Bench {
    // MARK: 9. Template renders against the number of subjects

    /// The template processor alone (in this process, no Kafka), with the example templates
    /// and fsync on: a store of S subjects, then cycles of 500 updates of random subjects;
    /// the time per cycle and per file rendered at each S, drawn as a chart, and each
    /// artifact's time per render; the ratio is the largest S's time per render to the
    /// smallest's, for the artifact whose renders grew most.
    func renders() async throws -> ScenarioResult {
        var perRender: [Int: Double] = [:]
        var perArtifact: [String: [Int: Double]] = [:]  // artifact → subjects → mean seconds per file
        var perCycle: [Int: Double] = [:]
        var rendersPerCycle: [Int: Double] = [:]
        var counts = ["cycles": scale.renderCycles, "events_per_cycle": 500]
        for subjects in scale.renderSubjects {
            let output = directory.appendingPathComponent(nextName("renders-\(subjects)")).path
            let processor = try await TemplateProcessor(templatesDirectory: templates, outputDirectory: output, durability: .fsync)
            var offset: Int64 = 0
            func cycle(_ names: [Int], _ type: ChangeType, revision: Int) -> [CompletedEvent] {
                names.map { index in
                    defer { offset += 1 }
                    return CompletedEvent(
                        event: ChangeEvent(
                            id: "r-\(offset)", changeType: type, subject: "node-\(index)",
                            properties: ["title": .string("Node \(index)"), "revision": .int(revision)], source: "regen-bench"),
                        position: SourcePosition(topic: "bench.renders", partition: 0, offset: offset))
                }
            }
            for first in stride(from: 0, to: subjects, by: 5_000) {
                _ = try await processor.completeCycle(cycle(Array(first..<min(subjects, first + 5_000)), .nodeAdded, revision: 0), executionID: "fill")
            }
            var random = SystemRandomNumberGenerator()
            let filled = processor.renderStatistics
            var elapsed = Duration.zero
            var rendered = 0
            for round in 1...scale.renderCycles {
                let events = cycle((0..<500).map { _ in Int.random(in: 0..<subjects, using: &random) }, .nodeUpdated, revision: round)
                let start = ContinuousClock.now
                let completion = try await processor.completeCycle(events, executionID: "round-\(round)")
                elapsed += ContinuousClock.now - start
                rendered += completion.report.regenerations
            }
            perCycle[subjects] = elapsed.seconds / Double(scale.renderCycles)
            perRender[subjects] = elapsed.seconds / Double(max(rendered, 1))
            rendersPerCycle[subjects] = Double(rendered) / Double(scale.renderCycles)
            counts["renders_\(subjects)"] = rendered
            // Each artifact's mean time per file over the measured cycles (not the fill).
            var artifacts: [String] = []
            for (artifact, now) in processor.renderStatistics.sorted(by: { $0.key < $1.key }) {
                let before = filled[artifact] ?? RenderStatistics()
                guard now.renders > before.renders else { continue }
                let mean = (now.total - before.total).seconds / Double(now.renders - before.renders)
                perArtifact[artifact, default: [:]][subjects] = mean
                artifacts.append("\(artifact) \(String(format: "%.0f", mean * 1e6)) µs ×\(String(format: "%.0f", Double(now.renders - before.renders) / Double(scale.renderCycles)))")
            }
            say("  \(subjects) subjects: \(String(format: "%.1f", perCycle[subjects]! * 1000)) ms per cycle, \(String(format: "%.0f", perRender[subjects]! * 1e6)) µs per file; per render (× files per cycle): \(artifacts.joined(separator: ", "))")
        }
        let small = scale.renderSubjects.min()!, large = scale.renderSubjects.max()!
        if !chartPath.isEmpty {
            let folder = URL(fileURLWithPath: chartPath).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("bench-renders.svg").path
            try Report.rendersChart(
                subjects: scale.renderSubjects, cycleSeconds: scale.renderSubjects.map { perCycle[$0]! },
                fileSeconds: scale.renderSubjects.map { perRender[$0]! }, filesPerCycle: scale.renderSubjects.map { rendersPerCycle[$0]! },
                title: "template processor: time per cycle of 500 updates by subjects in the store (\(revision))"
            ).write(toFile: path, atomically: true, encoding: .utf8)
        }
        var figures: [String: Double] = [:]
        for subjects in scale.renderSubjects {
            figures["cycle_s_\(subjects)"] = perCycle[subjects]
            figures["render_s_\(subjects)"] = perRender[subjects]
            figures["renders_per_cycle_\(subjects)"] = rendersPerCycle[subjects]
        }
        // The issue's measure: what one render costs, artifact by artifact, at the largest
        // store against the smallest (the mean per file mixes artifacts of different sizes,
        // and how many of each a cycle renders depends on the store).
        var worst = (artifact: "", large: 0.0, small: 1.0)
        for (artifact, means) in perArtifact.sorted(by: { $0.key < $1.key }) {
            for (subjects, mean) in means { figures["render_s_\(artifact)_\(subjects)"] = mean }
            guard let smallMean = means[small], let largeMean = means[large], smallMean > 0 else { continue }
            figures["render_ratio_\(artifact)"] = largeMean / smallMean
            if largeMean / smallMean > worst.large / worst.small { worst = (artifact, largeMean, smallMean) }
        }
        return result(
            "renders", "9. template renders, \(large) subjects against \(small)", figure: worst.large * 1e6,
            unit: "µs per render of \(worst.artifact)", figures: figures,
            baseline: Baseline(
                name: "\(small) subjects", figure: worst.small * 1e6, figures: ["render_s": perRender[small]!, "cycle_s": perCycle[small]!]),
            ratio: worst.large / worst.small,
            ratioMeaning: "time per render of the artifact whose renders grew most (\(worst.artifact)) at \(large) subjects ÷ at \(small)",
            counts: counts,
            settings: ["templates": templates, "durability": "fsync", "subjects": scale.renderSubjects.map(String.init).joined(separator: ",")])
    }
}
