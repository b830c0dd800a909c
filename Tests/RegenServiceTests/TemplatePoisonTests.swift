import Foundation
import Orchestration
import RdKafka
import RegenService
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

@Suite("Fault scenarios: template poison", .timeLimit(.minutes(10)))
struct TemplatePoisonTests {
    static let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/templates").path

    /// Subjects no output format can get wrong once escaped, and subjects the XML export cannot carry at all.
    static let hostile = [
        "node-tab\there", "node-\"quoted\"", #"node-back\slash"#, "node-</script><script>alert(1)</script>", "node-{{subject}}",
        "node-\u{202E}rtl", "node-line\nbreak", "node-../../etc/passwd", "node-" + String(repeating: "long", count: 25_000),
    ]
    static let poison = ["node-\u{1}start-of-heading", "node-nul\u{0}", "node-bell\u{7}", "node-\u{FFFF}"]

    @Test("The example templates under Kafka, hostile subjects among good traffic: unrenderable ones dead-lettered with the artifact and the reason, everything else deployed and committed, no stall")
    func poisonSubjects() async throws {
        let fixture = try await ServiceFixture(partitions: 8)
        let good = ChaosScale.isFull ? 20_000 : 2_000
        let rounds = ChaosScale.isFull ? 5 : 1
        let output = fixture.directory.appendingPathComponent("out").path
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: fixture.cluster.connection()), logger: fixture.logger)
        var poisonPositions: Set<String> = []
        for round in 0..<rounds {
            let slice = good / rounds
            try await ChangeEventGenerator(keys: 1000).send(round * slice..<(round + 1) * slice, to: fixture.input, with: producer)
            for (index, subject) in (Self.hostile + Self.poison).enumerated() {
                let event = ChangeEvent(
                    id: "hostile-\(round)-\(index)", changeType: round == 0 ? .nodeAdded : .nodeUpdated, subject: subject,
                    properties: ["title": .string("title of \(subject)"), "revision": .int(round)])
                let report = try await producer.send(topic: fixture.input, key: Array(subject.utf8), value: Array(try JSONEncoder().encode(event)))
                if Self.poison.contains(subject) { poisonPositions.insert("\(report.partition)/\(report.offset)") }
            }
        }
        try await producer.close()

        let config = try fixture.writeConfig(
            orchestrator: ["cycle: { maxEvents: 500 }", "healthCheckIntervalSecs: 1"],
            processor: "type: template\n  template: { templates: \"\(Self.templates)\", output: \"\(output)\" }")
        let run = try fixture.start(config: config)
        #expect(try await fixture.waitUntilCommitted(within: .seconds(ChaosScale.isFull ? 300 : 120)), "\(run.output.suffix(2000))")
        let letters = try await fixture.readAll("regen.dlq", expecting: poisonPositions.count)
        #expect(run.isRunning, "the process died: \(run.output.suffix(1500))")
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)

        // Exactly the events of the subjects the XML export cannot carry are dead-lettered, with the artifact and the reason.
        var lettered: Set<String> = []
        for letter in letters {
            let header = { (name: String) in letter.header(name)?.value.map { String(decoding: $0, as: UTF8.self) } }
            lettered.insert("\(header("regen.source.partition") ?? "?")/\(header("regen.source.offset") ?? "?")")
            let reason = header("regen.error") ?? ""
            #expect(reason.contains("artifact 'export' (template 'export', output 'export/") && reason.contains("not well-formed XML"), "\(reason)")
            #expect(header("regen.invalid") == "false")
        }
        #expect(lettered == poisonPositions, "dead letters: \(lettered.count), poison events: \(poisonPositions.count)")

        // Every other subject is deployed: pages, the catalog (valid JSON) and the export (well-formed XML).
        let expected = Set((0..<1000).map { "node-\($0)" } + Self.hostile)
        var subjects: [String] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: "\(output)/catalog") {
            let catalogData = try Data(contentsOf: URL(fileURLWithPath: "\(output)/catalog/\(name)"))
            let catalog = try #require(try JSONSerialization.jsonObject(with: catalogData) as? [String: Any], "catalog/\(name)")
            subjects += (catalog["nodes"] as? [[String: Any]] ?? []).compactMap { $0["subject"] as? String }
        }
        #expect(subjects.count == expected.count && Set(subjects) == expected)
        let exportPages = try FileManager.default.contentsOfDirectory(atPath: "\(output)/export")
        #expect(exportPages.count == (expected.count + 499) / 500)
        for name in exportPages {
            let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: "\(output)/export/\(name)")))
            #expect(parser.parse(), "export/\(name): \(String(describing: parser.parserError))")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(output)/nodes").count == expected.count)

        // Rejections are the events' fault, not the processor's: no completion_failing alert.
        let alerts = try await fixture.readAll("regen.alerts")
        let failing = alerts.filter { String(decoding: $0.value ?? [], as: UTF8.self).contains("completion_failing") }
        #expect(failing.isEmpty)
        print("template poison: \(good + rounds * (Self.hostile.count + Self.poison.count)) sent, \(letters.count) dead-lettered (\(poisonPositions.count) poison), \(subjects.count) subjects deployed, 0 completion failures")
    }
}
