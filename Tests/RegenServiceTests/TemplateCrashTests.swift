import Foundation
import Orchestration
import RdKafka
import RegenService
import Regeneration
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("Fault scenarios: template processor killed", .timeLimit(.minutes(20)))
struct TemplateCrashTests {
    static var events: Int { ChaosScale.isFull ? 100_000 : 20_000 }
    static var rounds: Int { ChaosScale.isFull ? 20 : 5 }
    static let subjects = 1000

    /// The example templates without what differs from run to run (the cycle's id, the
    /// time of rendering), so two runs over the same input must give the same files.
    static func deterministicTemplates(in directory: URL) throws -> String {
        let target = directory.appendingPathComponent("templates")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: TemplatePoisonTests.templates) {
            let text = try String(contentsOfFile: "\(TemplatePoisonTests.templates)/\(name)", encoding: .utf8)
            try text.replacingOccurrences(of: "{{execution_id}}", with: "").replacingOccurrences(of: "{{generated_at}}", with: "")
                .write(to: target.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return target.path
    }

    /// The deployed files (not `.regen`), by path relative to `output`.
    static func artifacts(in output: String) -> [String: Data] {
        var files: [String: Data] = [:]
        let paths = FileManager.default.enumerator(atPath: output)?.allObjects as? [String] ?? []
        for path in paths where !path.hasPrefix(".regen") {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: "\(output)/\(path)", isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            files[path] = FileManager.default.contents(atPath: "\(output)/\(path)")
        }
        return files
    }

    /// What is wrong with the deployed files: empty ones, and ones cut short or invalid.
    static func damage(in output: String) -> [String] {
        var problems: [String] = []
        for (path, data) in artifacts(in: output) {
            let text = String(decoding: data, as: UTF8.self)
            if data.isEmpty { problems.append("\(path) is empty"); continue }
            switch (path as NSString).pathExtension {
            case "json" where (try? JSONSerialization.jsonObject(with: data)) == nil: problems.append("\(path) is not valid JSON")
            case "xml" where !XMLParser(data: data).parse(): problems.append("\(path) is not well-formed XML")
            case "html" where !text.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("</html>"): problems.append("\(path) is cut short")
            default: break
            }
        }
        return problems
    }

    /// Subjects whose page shows an older revision than the saved state holds: the state
    /// must never be saved before the files rendered from it are deployed, or a crash
    /// between the two loses those renders (the events are then recognised as applied).
    static func pagesBehindState(in output: String) throws -> [String] {
        guard let data = try? TemplateProcessor.exportState(outputDirectory: output) else { return [] }
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let subjects = state["subjects"] as? [String: [String: Any]] ?? [:]
        var behind: [String] = []
        for (subject, fields) in subjects {
            guard let saved = (fields["properties"] as? [String: Any])?["revision"] as? Int else { continue }
            let page = (try? String(contentsOfFile: "\(output)/nodes/\(subject).html", encoding: .utf8)) ?? ""
            let shown = page.firstMatch(of: /revision (\d+)/).flatMap { Int($0.1) } ?? -1
            if shown < saved { behind.append("\(subject): page \(shown), state \(saved)") }
        }
        return behind
    }

    @Test("SIGKILL at random moments while deploying: no artifact is ever empty or partial, and the end result equals the input applied once, file by file and in the state")
    func killedMidCycle() async throws {
        let fixture = try await ServiceFixture(partitions: 8)
        try await fixture.produce(0..<Self.events, keys: Self.subjects)
        let templates = try Self.deterministicTemplates(in: fixture.directory)
        let output = fixture.directory.appendingPathComponent("out").path
        let config = try fixture.writeConfig(
            orchestrator: ["cycle: { maxEvents: 500, maxWaitMs: 300 }"],
            processor: "type: template\n  template: { templates: \"\(templates)\", output: \"\(output)\" }")

        var generator = SystemRandomNumberGenerator()
        var committedBefore: Int64 = 0
        var killsWithWorkLeft = 0
        for round in 0..<Self.rounds {
            let run = try fixture.start(config: config, name: "template-kill-\(round)")
            // This run has committed a cycle of its own: it is past its start and mid-stream.
            var committed: Int64 = 0
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(120) {
                committed = try await fixture.commitProgress().reduce(0) { $0 + max(0, $1.committed) }
                if committed > committedBefore || !run.isRunning { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(run.isRunning, "round \(round): regen exited: \(run.output.suffix(1500))")
            #expect(committed > committedBefore, "round \(round) committed nothing in 2 minutes")
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...600, using: &generator)))
            run.signal(SIGKILL)
            #expect(await run.waitForExit() != nil)
            let progress = try await fixture.commitProgress()
            if progress.contains(where: { $0.committed < $0.end }) { killsWithWorkLeft += 1 }
            committedBefore = progress.reduce(0) { $0 + max(0, $1.committed) }
            let damage = Self.damage(in: output)
            #expect(damage.isEmpty, "round \(round): \(damage.prefix(5))")
            let behind = try Self.pagesBehindState(in: output)
            #expect(behind.isEmpty, "round \(round): \(behind.count) pages older than the state: \(behind.prefix(3))")
        }
        #expect(killsWithWorkLeft >= max(1, Self.rounds / 2), "only \(killsWithWorkLeft) of \(Self.rounds) kills landed before the end of the input")

        let last = try fixture.start(config: config, name: "template-kill-last")
        #expect(try await fixture.waitUntilCommitted(within: .seconds(ChaosScale.isFull ? 600 : 240)), "\(last.output.suffix(1500))")
        last.signal(SIGTERM)
        #expect(await last.waitForExit() == 0)
        #expect(Self.damage(in: output).isEmpty)

        // The reference: the same records applied once, in one cycle, by a processor of its own.
        let records = try await fixture.readAll(fixture.input, expecting: Self.events)
        #expect(records.count == Self.events)
        let completed = try records.map { record in
            CompletedEvent(
                event: try ChangeEvent.decode(record.value),
                position: SourcePosition(topic: record.topic, partition: record.partition, offset: record.offset))
        }.sorted { ($0.position.partition.partition, $0.position.offset) < ($1.position.partition.partition, $1.position.offset) }
        let referenceOutput = fixture.directory.appendingPathComponent("reference").path
        let reference = try await TemplateProcessor(templatesDirectory: templates, outputDirectory: referenceOutput, durability: .none)
        let completion = try await reference.completeCycle(completed, executionID: "reference")
        #expect(completion.rejected.isEmpty)

        let crashed = Self.artifacts(in: output)
        let expected = Self.artifacts(in: referenceOutput)
        // A page per subject, the index, the directory's pages of 100, the catalog's and the export's of 500.
        let files = Self.subjects + 1 + (Self.subjects + 99) / 100 + 2 * ((Self.subjects + 499) / 500)
        #expect(crashed.count == files && Set(crashed.keys) == Set(expected.keys), "\(crashed.count) files, expected \(expected.count)")
        let differing = expected.keys.filter { crashed[$0] != expected[$0] }.sorted()
        #expect(differing.isEmpty, "\(differing.count) files differ from the reference: \(differing.prefix(5))")
        let state = try TemplateProcessor.exportState(outputDirectory: output)
        #expect(state == (try TemplateProcessor.exportState(outputDirectory: referenceOutput)), "the state differs from the reference")
        // `regen state export` prints the same store, from the configuration's output directory.
        let export = Process()
        export.executableURL = RegenProcess.executable
        export.arguments = ["state", "export", config]
        let pipe = Pipe()
        export.standardOutput = pipe
        try export.run()
        let printed = pipe.fileHandleForReading.readDataToEndOfFile()
        export.waitUntilExit()
        #expect(export.terminationStatus == 0 && printed == state + Data("\n".utf8))
        print("template kills: \(Self.rounds) SIGKILLs (\(killsWithWorkLeft) with input left), \(crashed.count) files equal to the reference")
    }
}
