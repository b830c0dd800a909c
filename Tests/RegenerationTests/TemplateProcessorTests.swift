import Foundation
import Orchestration
import Regeneration
import Testing

/// A templates folder and an output folder in a fresh temporary directory.
struct TemplateWorkspace {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("regen-tpl-\(UUID().uuidString.prefix(8))")
    var templates: String { root.appendingPathComponent("templates").path }
    var output: String { root.appendingPathComponent("out").path }

    init(manifest: String, templates files: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: templates, withIntermediateDirectories: true)
        try manifest.write(toFile: "\(templates)/manifest.yaml", atomically: true, encoding: .utf8)
        for (name, text) in files { try text.write(toFile: "\(templates)/\(name).mustache", atomically: true, encoding: .utf8) }
    }

    func read(_ relative: String) -> String? { try? String(contentsOfFile: "\(output)/\(relative)", encoding: .utf8) }

    func files() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: output)
        return (enumerator?.allObjects as? [String] ?? []).filter { !$0.hasPrefix(".regen") && !$0.hasSuffix("/") }
            .filter { !(try! URL(fileURLWithPath: "\(output)/\($0)").resourceValues(forKeys: [.isDirectoryKey]).isDirectory!) }.sorted()
    }
}

func event(_ id: String, _ subject: String, _ type: ChangeType = .nodeUpdated, _ properties: [String: JSONValue] = [:]) -> CompletedEvent {
    CompletedEvent(
        event: ChangeEvent(id: id, changeType: type, subject: subject, properties: properties),
        position: SourcePosition(topic: "t", partition: 0, offset: id.utf8.reduce(Int64(0)) { $0 &* 131 &+ Int64($1) }))
}

@Suite("Template processor", .timeLimit(.minutes(3)))
struct TemplateProcessorTests {
    static let perSubject = """
        artifacts:
          - name: node-page
            template: node
            output: "nodes/{{subject}}.html"
            subjects: ["*"]
        """

    /// A page per subject and one JSON file over all subjects.
    static let pageAndData = """
        artifacts:
          - { name: page, template: page, output: "nodes/{{subject}}.html" }
          - { name: data, template: data, output: "data.json" }
        """

    @Test("1,000 events on 10 subjects: 10 regenerations in one cycle, each with the subject's latest state")
    func coalescesPerArtifact() async throws {
        let workspace = try TemplateWorkspace(manifest: Self.perSubject, templates: ["node": "<h1>{{subject}}</h1><p>rev {{node.properties.revision}}</p>"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        let events = (0..<1000).map { event("e\($0)", "node-\($0 % 10)", .nodeUpdated, ["revision": .int($0)]) }
        let completion = try await processor.completeCycle(events, executionID: "x1")
        #expect(completion.report.regenerations == 10 && completion.report.deployments == 1 && completion.rejected.isEmpty)
        #expect(workspace.files().count == 10)
        #expect(workspace.read("nodes/node-3.html") == "<h1>node-3</h1><p>rev 993</p>")
        // Each file rendered is counted, with its time, under its artifact.
        let statistics = processor.renderStatistics
        #expect(Set(statistics.keys) == ["node-page"] && statistics["node-page"]?.renders == 10)
        #expect((statistics["node-page"]?.total ?? .zero) > .zero)
        _ = try await processor.completeCycle([event("e-next", "node-1", .nodeUpdated, ["revision": 1])], executionID: "x2")
        #expect(processor.renderStatistics["node-page"]?.renders == 11)
    }

    @Test("A subject like ../../etc/x stays a file inside the output directory")
    func subjectCannotEscape() async throws {
        let workspace = try TemplateWorkspace(manifest: Self.perSubject, templates: ["node": "{{subject}}"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        _ = try await processor.completeCycle([event("1", "../../etc/x"), event("2", "/abs/path"), event("3", ".hidden")], executionID: "x")
        // Slashes and leading dots are encoded, so each subject is one file name in nodes/.
        #expect(workspace.files() == ["nodes/%2E.%2F..%2Fetc%2Fx.html", "nodes/%2Ehidden.html", "nodes/%2Fabs%2Fpath.html"])
        #expect(workspace.read("nodes/%2E.%2F..%2Fetc%2Fx.html") == "../../etc/x")
        #expect(!FileManager.default.fileExists(atPath: workspace.root.appendingPathComponent("etc/x.html").path))
    }

    @Test("Hostile subjects (empty, NUL, dots, slashes, very long, alike but for their end) each get a file of their own inside the output")
    func everySubjectItsOwnFile() async throws {
        let workspace = try TemplateWorkspace(
            manifest: "artifacts:\n  - { name: page, template: page, output: \"deep/{{subject}}/x.txt\" }", templates: ["page": "[{{{subject}}}]"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        let long = String(repeating: "a", count: 400)
        let subjects = [
            "", "\u{0}", ".", "..", "../..", "/", "%00", "%-", "a/../../b", long + "1", long + "2", "x\u{0}y", "ünï", "%2F",
            "Node", "node", "NODE", "nOdE", "%4E", "%4e", "ÜNÏ", long.uppercased() + "1",
        ]
        let completion = try await processor.completeCycle(
            subjects.enumerated().map { event("h\($0.offset)", $0.element, .nodeAdded) }, executionID: "x")
        #expect(completion.rejected.isEmpty && completion.report.regenerations == subjects.count)
        let files = workspace.files()
        #expect(files.count == subjects.count, "\(files)")
        #expect(files.allSatisfy { $0.hasPrefix("deep/") && $0.hasSuffix("/x.txt") && $0.split(separator: "/").count == 3 }, "\(files)")
        #expect(Set(files.compactMap { workspace.read($0) }) == Set(subjects.map { "[\($0)]" }), "a file holds another subject's page")
        // A case-insensitive file system (macOS's, Windows') would still give each its own file.
        #expect(Set(files.map { $0.lowercased() }).count == subjects.count, "names that differ only in case: \(files)")
    }

    @Test("No two subjects get file names that differ only in case, whatever their letters")
    func caseInsensitiveFileSystems() async throws {
        let workspace = try TemplateWorkspace(manifest: Self.perSubject, templates: ["node": "{{{subject}}}"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        // Every way to write a few words in upper and lower case, with escapes and non-ASCII letters among them.
        var subjects: Set<String> = []
        for word in ["ab-c", "x%2Fy", "straße", "é.z", "i_d"] {
            let letters = Array(word)
            for mask in 0..<(1 << letters.count) {
                subjects.insert(letters.enumerated().map { mask & (1 << $0.offset) == 0 ? String($0.element) : $0.element.uppercased() }.joined())
            }
        }
        let completion = try await processor.completeCycle(
            subjects.sorted().enumerated().map { event("c\($0.offset)", $0.element, .nodeAdded) }, executionID: "case")
        #expect(completion.rejected.isEmpty)
        let files = workspace.files()
        #expect(files.count == subjects.count)
        #expect(Set(files.map { $0.lowercased() }).count == subjects.count, "names that differ only in case")
        #expect(Set(files.compactMap { workspace.read($0) }) == subjects, "a file holds another subject's page")
        #expect(workspace.read("nodes/%41b-c.html") == "Ab-c")
    }

    @Test("A subject whose changes break a file is rejected with the reason; the rest of the cycle is deployed, its state kept")
    func brokenSubjectIsRejected() async throws {
        let workspace = try TemplateWorkspace(
            manifest: Self.pageAndData,
            templates: ["page": "{{subject}} {{node.properties.v}}", "data": "{ \"count\": {{count}}{{#nodes}}{{{properties.broken}}}{{/nodes}} }"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        _ = try await processor.completeCycle([event("1", "a", .nodeAdded, ["v": 1])], executionID: "ok")
        #expect(workspace.read("nodes/a.html") == "a 1")
        #expect(workspace.read("data.json") == "{ \"count\": 1 }")

        let bad = [event("2", "a", .nodeUpdated, ["v": 2]), event("3", "b", .nodeAdded, ["broken": "oops"]), event("5", "b", .nodeUpdated)]
        let completion = try await processor.completeCycle(bad, executionID: "bad")
        #expect(Set(completion.rejected.keys) == [bad[1].position, bad[2].position])
        let reason = completion.rejected[bad[1].position] ?? ""
        #expect(reason.contains("artifact 'data' (template 'data', output 'data.json')") && reason.contains("not valid JSON"), "\(reason)")
        #expect(workspace.read("nodes/a.html") == "a 2", "the good subject's change was not deployed")
        #expect(workspace.read("nodes/b.html") == nil)
        #expect(workspace.read("data.json") == "{ \"count\": 1 }")

        // The rejected subject's changes are not in the state: the next cycle renders without them.
        let next = try await processor.completeCycle([event("4", "c", .nodeAdded, ["v": 3])], executionID: "ok2")
        #expect(next.report.regenerations == 2 && next.rejected.isEmpty)
        #expect(workspace.read("data.json") == "{ \"count\": 2 }")
    }

    @Test("A failure no event explains (a deployment that fails midway) deploys nothing, keeps the previous versions and throws")
    func unexplainedFailureRollsBack() async throws {
        let workspace = try TemplateWorkspace(
            manifest: Self.pageAndData, templates: ["page": "{{subject}} {{node.properties.v}}", "data": "{ \"count\": {{count}} }"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        _ = try await processor.completeCycle([event("1", "a", .nodeAdded, ["v": 1])], executionID: "ok")
        // A non-empty directory where nodes/b.html must go: data.json and nodes/a.html move first, then the rename fails.
        try FileManager.default.createDirectory(atPath: "\(workspace.output)/nodes/b.html/x", withIntermediateDirectories: true)
        await #expect(throws: TemplateError.self) {
            try await processor.completeCycle([event("2", "a", .nodeUpdated, ["v": 2]), event("3", "b", .nodeAdded, ["v": 1])], executionID: "bad")
        }
        #expect(workspace.read("nodes/a.html") == "a 1", "a file of the failed set was deployed")
        #expect(workspace.read("data.json") == "{ \"count\": 1 }")
        try FileManager.default.removeItem(atPath: "\(workspace.output)/nodes/b.html")
        let retried = try await processor.completeCycle([event("2", "a", .nodeUpdated, ["v": 2]), event("3", "b", .nodeAdded, ["v": 1])], executionID: "again")
        #expect(retried.rejected.isEmpty && workspace.read("data.json") == "{ \"count\": 2 }" && workspace.read("nodes/a.html") == "a 2")
    }

    @Test(
        "A replaced file is kept under .regen/previous as the same file (a hard link, not a copy); both durabilities deploy the same",
        arguments: [Durability.fsync, .none])
    func previousVersionIsTheReplacedFile(durability: Durability) async throws {
        let workspace = try TemplateWorkspace(
            manifest: Self.pageAndData, templates: ["page": "{{subject}} {{node.properties.v}}", "data": "{ \"count\": {{count}} }"])
        let processor = try await TemplateProcessor(
            templatesDirectory: workspace.templates, outputDirectory: workspace.output, durability: durability)
        _ = try await processor.completeCycle([event("1", "a", .nodeAdded, ["v": 1])], executionID: "one")
        let before = try FileManager.default.attributesOfItem(atPath: "\(workspace.output)/nodes/a.html")[.systemFileNumber] as? Int
        _ = try await processor.completeCycle([event("2", "a", .nodeUpdated, ["v": 2])], executionID: "two")
        #expect(workspace.read("nodes/a.html") == "a 2" && workspace.read("data.json") == "{ \"count\": 1 }")
        #expect(workspace.read(".regen/previous/nodes/a.html") == "a 1")
        let kept = try FileManager.default.attributesOfItem(atPath: "\(workspace.output)/.regen/previous/nodes/a.html")
        #expect(before != nil && kept[.systemFileNumber] as? Int == before, "the previous version is a copy, not the replaced file")
        _ = try await processor.completeCycle([event("3", "a", .nodeUpdated, ["v": 3])], executionID: "three")
        #expect(workspace.read(".regen/previous/nodes/a.html") == "a 2" && workspace.read("nodes/a.html") == "a 3")
        // Nothing is left behind in staging.
        let staging = (try? FileManager.default.contentsOfDirectory(atPath: "\(workspace.output)/.regen/staging")) ?? []
        #expect(staging.isEmpty)
    }

    @Test("A cycle's events read again (a crash after the state was saved, before the commit) change neither the state nor the files")
    func replayChangesNothing() async throws {
        let templates = [
            "page": "{{subject}} {{node.properties.v}}{{#node.edges}} {{predicate}}>{{object}}{{/node.edges}}",
            "data": "{ \"count\": {{count}}, \"subjects\": [{{#nodes}}\"{{subject}}\"{{^last()}},{{/last()}}{{/nodes}}] }",
        ]
        func at(_ partition: Int, _ offset: Int64, _ subject: String, _ type: ChangeType, _ v: Int = 0, edge: String? = nil) -> CompletedEvent {
            CompletedEvent(
                event: ChangeEvent(
                    id: "\(partition)-\(offset)", changeType: type, subject: subject, predicate: edge.map { _ in "links" }, object: edge,
                    properties: type == .nodeAdded || type == .nodeUpdated ? ["v": .int(v)] : [:]),
                position: SourcePosition(topic: "t", partition: partition, offset: offset))
        }
        // One subject's events from two partitions (the producer did not key by subject), an
        // edge moved to the end by a later event, a subject removed after an update.
        let cycle = [
            at(0, 10, "a", .nodeAdded, 1), at(0, 11, "a", .edgeAdded, edge: "b"), at(0, 12, "a", .edgeAdded, edge: "c"),
            at(0, 13, "a", .edgeAdded, edge: "b"), at(0, 14, "c", .nodeUpdated, 5),
            at(1, 40, "a", .nodeUpdated, 2), at(1, 41, "c", .nodeRemoved), at(1, 42, "b", .nodeAdded, 7),
        ]
        let once = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        let twice = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        let fixed: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_800_000_000) }
        let first = try await TemplateProcessor(templatesDirectory: once.templates, outputDirectory: once.output, clock: fixed)
        _ = try await first.completeCycle(cycle, executionID: "x")
        let second = try await TemplateProcessor(templatesDirectory: twice.templates, outputDirectory: twice.output, clock: fixed)
        _ = try await second.completeCycle(cycle, executionID: "x")
        // Restarted: a new processor over the same output reads the whole cycle again, then
        // only partition 0's part of it (partition 1's offsets were committed).
        let restarted = try await TemplateProcessor(templatesDirectory: twice.templates, outputDirectory: twice.output, clock: fixed)
        let replayed = try await restarted.completeCycle(cycle, executionID: "y")
        let partly = try await restarted.completeCycle(cycle.filter { $0.position.partition.partition == 0 }, executionID: "z")
        #expect(replayed.report.regenerations == 0 && partly.report.regenerations == 0 && replayed.rejected.isEmpty)
        #expect(once.read("nodes/a.html") == "a 2 links>c links>b")
        #expect(once.read("nodes/c.html") == "c ", "a removed subject's page is rendered without its state")
        #expect(once.read("data.json") == "{ \"count\": 2, \"subjects\": [\"a\",\"b\"] }")
        #expect(once.files() == twice.files())
        for file in once.files() { #expect(once.read(file) == twice.read(file), "\(file)") }
        let state = try TemplateProcessor.exportState(outputDirectory: once.output)
        #expect(state == (try TemplateProcessor.exportState(outputDirectory: twice.output)))
        let exported = try JSONSerialization.jsonObject(with: state) as? [String: [String: [String: Any]]]
        #expect((exported?["subjects"]?["b"]?["applied"] as? [String: Int])?["t/1"] == 42, "the positions are in the export")
        #expect((exported?["removed"]?["c"] as? [String: Int]) == ["t/0": 14, "t/1": 41], "the removed subject's positions are kept")

        // A later event still applies, also to a removed subject from the partition that did not remove it.
        let later = try await restarted.completeCycle([at(0, 15, "c", .nodeUpdated, 6), at(0, 16, "a", .nodeUpdated, 3)], executionID: "w")
        #expect(later.report.regenerations == 3 && twice.read("nodes/a.html") == "a 3 links>c links>b" && twice.read("nodes/c.html") == "c 6")
    }

    @Test("Contexts kept from earlier cycles never go stale: many small cycles rendered in parallel, a restart midway, and one big cycle rendered one file at a time give the same files")
    func contextsAcrossCycles() async throws {
        let templates = [
            "page": "{{subject}} {{node.properties.v}} {{count}}",
            "data": "[{{#nodes}}\"{{subject}}:{{properties.v}}:{{last_change}}\"{{^last()}},{{/last()}}{{/nodes}}]",
        ]
        var random = SystemRandomNumberGenerator()
        let types: [ChangeType] = [.nodeAdded, .nodeUpdated, .nodeUpdated, .nodeRemoved, .edgeAdded]
        let all = (0..<600).map { index in
            CompletedEvent(
                event: ChangeEvent(
                    id: "e\(index)", changeType: types.randomElement(using: &random)!, timestamp: Date(timeIntervalSince1970: Double(index)),
                    subject: "s\(Int.random(in: 0..<40, using: &random))", predicate: "p", object: "o", properties: ["v": .int(index)]),
                position: SourcePosition(topic: "t", partition: 0, offset: Int64(index)))
        }
        let fixed: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_800_000_000) }
        let small = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        var processor = try await TemplateProcessor(
            templatesDirectory: small.templates, outputDirectory: small.output, renderConcurrency: 4, clock: fixed)
        for first in stride(from: 0, to: all.count, by: 25) {
            if first == 300 {  // a restart: the contexts are built again from the stored state
                processor = try await TemplateProcessor(
                    templatesDirectory: small.templates, outputDirectory: small.output, renderConcurrency: 4, clock: fixed)
            }
            _ = try await processor.completeCycle(Array(all[first..<first + 25]), executionID: "x")
        }
        let big = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        let once = try await TemplateProcessor(
            templatesDirectory: big.templates, outputDirectory: big.output, renderConcurrency: 1, clock: fixed)
        _ = try await once.completeCycle(all, executionID: "x")
        #expect(big.read("data.json") == small.read("data.json"))
        // Pages of subjects untouched by the last cycles were rendered earlier, with the count of then.
        let latest = Set(all.suffix(25).map(\.event.subject))
        for subject in latest { #expect(big.read("nodes/\(subject).html") == small.read("nodes/\(subject).html"), "\(subject)") }
    }

    @Test("The subject store survives a restart exactly (hostile strings, numbers, nested values, edges); an old state.json is imported once")
    func storeSurvivesRestart() async throws {
        let templates = [
            "page": "{{subject}}",
            "data": "[{{#nodes}}{\"s\": \"{{subject}}\", \"p\": {{{properties_json}}}, \"e\": \"{{#edges}}{{predicate}}>{{object}};{{/edges}}\", \"t\": \"{{updated_at}}\"}{{^last()}},{{/last()}}{{/nodes}}]",
        ]
        let hostile: [String: JSONValue] = [
            "quote": .string("say \"hi\" \\ \u{1}\u{1F}\t\n"), "unicode": .string("é ✓ 🎉 \u{2028}"), "big": .number(9_007_199_254_740_991),
            "fraction": .number(0.1), "negative": .number(-3), "flag": .bool(true), "nothing": .null,
            "nested": .object(["list": .array([.number(1), .string("two"), .object(["deep": .bool(false)])])]),
        ]
        func at(_ offset: Int64, _ subject: String, _ type: ChangeType, _ properties: [String: JSONValue] = [:]) -> CompletedEvent {
            CompletedEvent(
                event: ChangeEvent(
                    id: "\(offset)", changeType: type, timestamp: Date(timeIntervalSince1970: 1_700_000_000.123_456 + Double(offset)),
                    subject: subject, predicate: "links \"x\"", object: "node <\(offset)>", properties: properties),
                position: SourcePosition(topic: "t", partition: 3, offset: offset))
        }
        let first = [at(1, "a", .nodeAdded, hostile), at(2, "a", .edgeAdded), at(3, "b", .nodeAdded, ["v": .number(1)]), at(4, "b", .nodeRemoved)]
        let second = [at(5, "c", .nodeAdded, ["v": .number(2)])]  // re-renders data.json over a and c
        let fixed: @Sendable () -> Date = { Date(timeIntervalSince1970: 1_800_000_000) }
        let restarted = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        _ = try await TemplateProcessor(templatesDirectory: restarted.templates, outputDirectory: restarted.output, clock: fixed)
            .completeCycle(first, executionID: "x")
        _ = try await TemplateProcessor(templatesDirectory: restarted.templates, outputDirectory: restarted.output, clock: fixed)
            .completeCycle(second, executionID: "x")
        let reference = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        let once = try await TemplateProcessor(templatesDirectory: reference.templates, outputDirectory: reference.output, clock: fixed)
        _ = try await once.completeCycle(first, executionID: "x")
        _ = try await once.completeCycle(second, executionID: "x")
        #expect(restarted.read("data.json") == reference.read("data.json"))
        #expect(restarted.read("data.json")?.contains("9007199254740991") == true)
        let exported = try TemplateProcessor.exportState(outputDirectory: restarted.output)
        #expect(exported == (try TemplateProcessor.exportState(outputDirectory: reference.output)))
        // The positions of the removed subject are kept: its replayed events change nothing.
        let replay = try await TemplateProcessor(templatesDirectory: restarted.templates, outputDirectory: restarted.output, clock: fixed)
            .completeCycle(first + second, executionID: "y")
        #expect(replay.report.regenerations == 0)

        // A state.json of an earlier regen is imported on the first start, then renamed.
        let legacy = try TemplateWorkspace(manifest: Self.pageAndData, templates: templates)
        try FileManager.default.createDirectory(atPath: "\(legacy.output)/.regen", withIntermediateDirectories: true)
        try exported.write(to: URL(fileURLWithPath: "\(legacy.output)/.regen/state.json"))
        let imported = try await TemplateProcessor(templatesDirectory: legacy.templates, outputDirectory: legacy.output, clock: fixed)
        #expect(try TemplateProcessor.exportState(outputDirectory: legacy.output) == exported)
        #expect(legacy.read(".regen/state.json") == nil && legacy.read(".regen/state.json.imported") != nil)
        #expect(try await imported.completeCycle(first, executionID: "z").report.regenerations == 0)
        #expect(throws: TemplateError.self) { try TemplateProcessor.exportState(outputDirectory: legacy.root.appendingPathComponent("none").path) }
    }

    @Test("Cycles completing at once (cycles in flight) all land: none starts from a state another is replacing")
    func concurrentCompletions() async throws {
        let workspace = try TemplateWorkspace(manifest: Self.pageAndData, templates: ["page": "{{subject}}", "data": "{{count}}"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        await withTaskGroup(of: Void.self) { group in
            for partition in 0..<4 {
                let events = (0..<50).map { index in
                    CompletedEvent(
                        event: ChangeEvent(id: "\(partition)-\(index)", changeType: .nodeAdded, subject: "s\(partition)-\(index)"),
                        position: SourcePosition(topic: "t", partition: partition, offset: Int64(index)))
                }
                group.addTask { _ = try? await processor.completeCycle(events, executionID: "p\(partition)") }
            }
        }
        #expect(workspace.read("data.json") == "200")
        let state = try JSONSerialization.jsonObject(with: TemplateProcessor.exportState(outputDirectory: workspace.output)) as? [String: Any]
        #expect((state?["subjects"] as? [String: Any])?.count == 200)
    }

    @Test("A file that fails even without the cycle's subjects is the templates' fault: nothing is rejected, the cycle throws")
    func brokenTemplateIsNotTheEventsFault() async throws {
        let workspace = try TemplateWorkspace(
            manifest: "artifacts:\n  - { name: data, template: data, output: data.json }", templates: ["data": "{ \"count\": {{count}}"])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        let error = await #expect(throws: TemplateError.self) {
            try await processor.completeCycle([event("1", "a", .nodeAdded), event("2", "b", .nodeAdded)], executionID: "x")
        }
        #expect(error?.description.contains("fails without every subject this cycle changed") == true, "\(String(describing: error))")
        #expect(workspace.files().isEmpty)
    }

    @Test("Dependencies are followed transitively; a template change re-renders what uses it")
    func transitiveDependencies() async throws {
        let manifest = """
            artifacts:
              - { name: page, template: page, output: "nodes/{{subject}}.html", subjects: ["node-*"] }
              - { name: index, template: index, output: index.html, subjects: ["node-*"], dependsOn: [page] }
              - { name: sitemap, template: sitemap, output: sitemap.xml, subjects: ["none"], dependsOn: [index] }
              - { name: edges, template: edges, output: edges.txt, subjects: ["*"], changeTypes: [edge_added, edge_removed] }
            """
        let workspace = try TemplateWorkspace(
            manifest: manifest,
            templates: ["page": "{{subject}}", "index": "{{count}} pages", "sitemap": "<urlset/>", "edges": "{{#nodes}}{{#edges}}{{predicate}}{{/edges}}{{/nodes}}."])
        let processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        let first = try await processor.completeCycle([event("1", "node-1", .nodeAdded), event("2", "node-2", .nodeAdded)], executionID: "a")
        #expect(first.report.regenerations == 4)  // 2 pages, index, sitemap (through index)
        #expect(workspace.read("edges.txt") == nil, "a node change does not affect an edges-only artifact")

        let byTemplate = try await processor.completeCycle([event("3", "page", .templateChanged)], executionID: "b")
        #expect(byTemplate.report.regenerations == 4)  // every page, then index and sitemap
        let other = try await processor.completeCycle([event("4", "other", .nodeUpdated)], executionID: "c")
        #expect(other.report.regenerations == 0)
    }

    @Test("Bad manifests are refused with the reason")
    func badManifests() throws {
        let cases = [
            ("artifacts:\n  - { name: a, template: t, output: x, dependsOn: [b] }\n  - { name: b, template: t, output: y, dependsOn: [a] }", "cycle"),
            ("artifacts:\n  - { name: a, template: t, output: x, dependsOn: [zzz] }", "unknown artifact 'zzz'"),
            ("artifacts:\n  - { name: a, template: t, output: ../x }", "inside the output directory"),
            ("artifacts:\n  - { name: a, template: t, output: /etc/x }", "inside the output directory"),
        ]
        for (manifest, reason) in cases {
            let workspace = try TemplateWorkspace(manifest: manifest, templates: ["t": "x"])
            let error = #expect(throws: TemplateError.self) { try TemplateManifest.load(from: workspace.templates) }
            #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
        }
    }

    static let paginated = """
        artifacts:
          - { name: list, template: list, output: "list/{{page}}.txt", paginate: 3 }
        """
    static let listTemplate = "{{page}}/{{pages}} {{total}}:{{#nodes}} {{subject}}={{properties.v}}{{/nodes}}"
        + "{{#previous_page}} prev={{previous_page}}{{/previous_page}}{{#next_page}} next={{next_page}}{{/next_page}}"

    @Test("paginate: N splits an artifact into pages of N subjects; a cycle renders only the pages whose subjects changed or moved, also after a restart")
    func pagination() async throws {
        let workspace = try TemplateWorkspace(manifest: Self.paginated, templates: ["list": Self.listTemplate])
        var processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        let first = try await processor.completeCycle((1...7).map { event("a\($0)", "s0\($0)", .nodeAdded, ["v": .int(1)]) }, executionID: "1")
        #expect(first.report.regenerations == 3)
        #expect(workspace.read("list/1.txt") == "1/3 7: s01=1 s02=1 s03=1 next=2.txt")
        #expect(workspace.read("list/2.txt") == "2/3 7: s04=1 s05=1 s06=1 prev=1.txt next=3.txt")
        #expect(workspace.read("list/3.txt") == "3/3 7: s07=1 prev=2.txt")

        // An update touches its page only.
        let update = try await processor.completeCycle([event("u5", "s05", .nodeUpdated, ["v": .int(2)])], executionID: "2")
        #expect(update.report.regenerations == 1)
        #expect(workspace.read("list/2.txt") == "2/3 7: s04=1 s05=2 s06=1 prev=1.txt next=3.txt")

        // A subject sorting first moves every page's membership.
        let added = try await processor.completeCycle([event("a0", "s00", .nodeAdded, ["v": .int(1)])], executionID: "3")
        #expect(added.report.regenerations == 3)
        #expect(workspace.read("list/1.txt") == "1/3 8: s00=1 s01=1 s02=1 next=2.txt")
        #expect(workspace.read("list/3.txt") == "3/3 8: s06=1 s07=1 prev=2.txt")

        // Removals shrink the pages; the page past the new end is rendered empty, not left stale.
        let removed = try await processor.completeCycle(
            ["s00", "s01", "s02"].map { event("r\($0)", $0, .nodeRemoved) }, executionID: "4")
        #expect(removed.report.regenerations == 3)
        #expect(workspace.read("list/1.txt") == "1/2 5: s03=1 s04=1 s05=2 next=2.txt")
        #expect(workspace.read("list/2.txt") == "2/2 5: s06=1 s07=1 prev=1.txt")
        #expect(workspace.read("list/3.txt") == "3/2 5: prev=2.txt")

        // After a restart the pages are known from the store: an update still renders one page.
        processor = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
        let restarted = try await processor.completeCycle([event("u7", "s07", .nodeUpdated, ["v": .int(3)])], executionID: "5")
        #expect(restarted.report.regenerations == 1)
        #expect(workspace.read("list/2.txt") == "2/2 5: s06=1 s07=3 prev=1.txt")

        // A template change renders every page.
        let template = try await processor.completeCycle([event("t", "list", .templateChanged)], executionID: "6")
        #expect(template.report.regenerations == 2)
    }

    @Test("paginate is refused, naming the artifact, on a per-subject output, without {{page}}, or below 1; {{page}} needs paginate")
    func paginationManifest() async throws {
        for artifact in [
            #"{ name: a, template: t, output: "x/{{subject}}/{{page}}.txt", paginate: 2 }"#,
            #"{ name: a, template: t, output: "x.txt", paginate: 2 }"#,
            #"{ name: a, template: t, output: "x/{{page}}.txt", paginate: 0 }"#,
            #"{ name: a, template: t, output: "x/{{page}}.txt" }"#,
        ] {
            let workspace = try TemplateWorkspace(manifest: "artifacts:\n  - \(artifact)\n", templates: ["t": "x"])
            await #expect(throws: TemplateError.self, "\(artifact)") {
                _ = try await TemplateProcessor(templatesDirectory: workspace.templates, outputDirectory: workspace.output)
            }
        }
    }
}
