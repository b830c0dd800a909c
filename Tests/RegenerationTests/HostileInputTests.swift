import Foundation
import Orchestration
import Regeneration
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The example templates (`examples/templates`) in a fresh output directory.
struct ExampleTemplates {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/templates").path
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("regen-hostile-\(UUID().uuidString.prefix(8))").path

    func processor() async throws -> TemplateProcessor {
        try await TemplateProcessor(templatesDirectory: Self.directory, outputDirectory: output)
    }

    func read(_ relative: String) -> String? { try? String(contentsOfFile: "\(output)/\(relative)", encoding: .utf8) }

    /// The files of one paginated artifact's folder (`catalog`, `export`, `directory`), in page order.
    func pages(_ folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(output)/\(folder)")) ?? []
        return names.sorted { Int($0.prefix { $0.isNumber }) ?? 0 < Int($1.prefix { $0.isNumber }) ?? 0 }.compactMap { read("\(folder)/\($0)") }
    }

    /// The catalog pages' nodes: subject → title. Fails the test when a page does not parse.
    func catalog() throws -> [String: String] {
        var titles: [String: String] = [:]
        for page in pages("catalog") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(page.utf8)) as? [String: Any])
            let nodes = try #require(object["nodes"] as? [[String: Any]])
            #expect(object["count"] as? Int == nodes.count)
            for node in nodes {
                let properties = node["properties"] as? [String: Any]
                titles[node["subject"] as? String ?? "?"] = properties?["title"] as? String ?? "?"
            }
        }
        return titles
    }

    /// The export pages' nodes: subject attribute → title text. Fails the test when a page is not well-formed.
    func export() throws -> [String: String] {
        var titles: [String: String] = [:]
        for page in pages("export") {
            let reader = ExportReader()
            let parser = XMLParser(data: Data(page.utf8))
            parser.delegate = reader
            #expect(parser.parse(), "an export page is not well-formed: \(String(describing: parser.parserError))")
            titles.merge(reader.titles) { first, _ in first }
        }
        return titles
    }

    /// The directory pages' links to node pages, percent-decoded and relative to the output: the files they point at.
    func directoryLinks() throws -> [String] {
        let regex = try NSRegularExpression(pattern: #"href="\.\./(nodes/[^"]*)""#)
        return pages("directory").flatMap { html in
            regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).compactMap {
                Range($0.range(at: 1), in: html).flatMap { String(html[$0]).removingPercentEncoding }
            }
        }
    }
}

/// Collects `<node subject="…"><title>…</title></node>` from an export page.
final class ExportReader: NSObject, XMLParserDelegate {
    var titles: [String: String] = [:]
    private var subject: String?
    private var title: String?

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
        if name == "node" { subject = attributes["subject"] }
        if name == "title" { title = "" }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { title? += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "title", let subject { titles[subject] = title ?? "" }
        if name == "title" { title = nil }
    }
}

/// HTML escaping as the templates must do it, to compare with.
func htmlEscaped(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        .replacingOccurrences(of: "'", with: "&#39;")
}

/// Whether XML 1.0 can carry `text` at all (it cannot carry most control characters, U+FFFE or U+FFFF).
func xmlCanCarry(_ text: String) -> Bool {
    !text.unicodeScalars.contains { ($0.value < 0x20 && !["\t", "\n", "\r"].contains($0)) || $0.value == 0xFFFE || $0.value == 0xFFFF }
}

@Suite("Template processor: hostile input", .timeLimit(.minutes(3)))
struct HostileInputTests {
    /// Every kind of string a change event can carry that a template could get wrong.
    static func hostileStrings() throws -> [String] {
        var strings = (0..<0x20).map { "ctl-\(String($0, radix: 16))-[\(Character(Unicode.Scalar($0)!))]" } + ["del-[\u{7F}]"]
        strings += [
            "quote \" and apostrophe '", #"back\slash \\ \n (literally)"#, "</script><script>alert(1)</script>",
            "<b onmouseover=\"alert(1)\">bold</b>", "{{subject}} {{{node}}} }}{{ {{#nodes}}", "\u{202E}right-to-left override",
            "line\u{2028}and paragraph\u{2029}separators", "emoji 🧪 and e\u{301} combining", "&amp; &lt; already escaped", "]]> CDATA end",
            "noncharacters \u{FFFE}\u{FFFF}", "replacement \u{FFFD}", "big <" + String(repeating: "x", count: 100_000) + ">",
        ]
        // An escaped lone surrogate: if the decoder accepts it at all, its string must be safe too.
        let surrogate = #"{"id":"s","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"node-\ud800","properties":{"title":"\udc00x"}}"#
        if let event = try? ChangeEvent.decode(Array(surrogate.utf8)) {
            strings += [String(event.subject.dropFirst(5)), event.properties["title"]?.stringValue ?? ""]
        }
        return strings
    }

    @Test("Subjects and titles with every hostile string: each example artifact stays valid for its format and says exactly what the event said")
    func exampleTemplatesStayValid() async throws {
        let templates = ExampleTemplates()
        let processor = try await templates.processor()
        let hostile = try Self.hostileStrings()
        var events: [CompletedEvent] = []
        var expected: [String: String] = [:]  // subject → title, for what XML can carry
        for (index, text) in hostile.enumerated() {
            let subject = "node-\(index)-\(text)"
            events.append(event("e\(index)", subject, .nodeAdded, ["title": .string(text), "revision": .int(index)]))
            if xmlCanCarry(text) { expected[subject] = text }
        }
        for index in 0..<50 { events.append(event("g\(index)", "node-good-\(index)", .nodeAdded, ["title": .string("Good \(index)")])) }
        for index in 0..<50 { expected["node-good-\(index)"] = "Good \(index)" }

        let completion = try await processor.completeCycle(events, executionID: "hostile")
        // Only what XML 1.0 cannot carry at all is refused, and only by the XML artifact.
        let rejectedSubjects = Set(events.filter { completion.rejected[$0.position] != nil }.map(\.event.subject))
        #expect(rejectedSubjects == Set(events.map(\.event.subject)).subtracting(expected.keys))
        for reason in completion.rejected.values {
            #expect(reason.contains("artifact 'export' (template 'export', output 'export/") && reason.contains("not well-formed XML"), "\(reason)")
        }

        #expect(try templates.catalog() == expected, "the catalog does not round-trip every subject and title")
        #expect(try templates.export() == expected, "the export does not round-trip every subject and title")
        let links = try templates.directoryLinks()
        #expect(links.count == expected.count)
        for link in links { #expect(FileManager.default.fileExists(atPath: "\(templates.output)/\(link)"), "the directory links to a missing \(link)") }
        for page in templates.pages("directory") {
            #expect(!page.contains("<script") && !page.contains("<b "), "the directory carries markup from an event")
        }
        let pages = try FileManager.default.contentsOfDirectory(atPath: "\(templates.output)/nodes").compactMap { templates.read("nodes/\($0)") }
        #expect(pages.count == expected.count)
        for (subject, title) in expected {
            let page = pages.first { $0.contains("<code>\(htmlEscaped(subject))</code>") }
            let html = try #require(page, "no page for \(subject.prefix(40))")
            #expect(html.contains("<title>\(htmlEscaped(subject))</title>") && html.contains("<h1>\(htmlEscaped(title))</h1>"))
            #expect(!html.contains("<script") && !html.contains("<b "), "a page carries markup from an event")
        }
    }

    @Test("One poison subject among 1,000 good events: every good subject's artifacts are deployed, the poison events rejected with the reason")
    func poisonAmongGood() async throws {
        let templates = ExampleTemplates()
        let processor = try await templates.processor()
        var events = (0..<1000).map { event("g\($0)", "node-\($0)", .nodeAdded, ["title": .string("Node \($0)"), "revision": 1]) }
        let poison = [
            event("p1", "node-\u{1}poison", .nodeAdded, ["title": "p"]), event("p2", "node-\u{1}poison", .nodeUpdated, ["title": "q"]),
        ]
        events.insert(poison[0], at: 10)
        events.insert(poison[1], at: 700)
        let completion = try await processor.completeCycle(events, executionID: "poison")
        #expect(Set(completion.rejected.keys) == Set(poison.map(\.position)))
        #expect(completion.rejected.values.allSatisfy { $0.contains("export/") && $0.contains("not well-formed XML") })
        #expect(completion.report.regenerations == 1015)  // 1,000 pages, index, 10 directory pages, 2 catalog and 2 export pages
        #expect(try templates.catalog().count == 1000)
        #expect(try templates.export().count == 1000)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(templates.output)/nodes").count == 1000)
    }

    @Test("Several poison subjects in one cycle are each found, and only they are rejected")
    func severalPoisons() async throws {
        let templates = ExampleTemplates()
        let processor = try await templates.processor()
        var events = (0..<200).map { event("g\($0)", "node-\($0)", .nodeAdded, ["title": .string("Node \($0)")]) }
        let poison = [3, 77, 78, 150].map { event("p\($0)", "node-\($0)", .nodeUpdated, ["title": .string("bell \u{7}")]) }
        events += poison
        let completion = try await processor.completeCycle(events, executionID: "poison")
        // A subject is rejected as a whole: its good event of this cycle too.
        let rejectedSubjects = Set(events.filter { completion.rejected[$0.position] != nil }.map(\.event.subject))
        #expect(rejectedSubjects == ["node-3", "node-77", "node-78", "node-150"])
        #expect(try templates.export().count == 196)
        // The next cycle's fix of one of them goes through.
        let fixed = try await processor.completeCycle([event("f", "node-77", .nodeAdded, ["title": "fixed"])], executionID: "fix")
        #expect(fixed.rejected.isEmpty)
        #expect(try templates.export()["node-77"] == "fixed")
    }

    @Test("A subject far longer than a file name allows still gets its own page")
    func longSubject() async throws {
        let templates = ExampleTemplates()
        let processor = try await templates.processor()
        let subjects = ["node-" + String(repeating: "é", count: 50_000), "node-" + String(repeating: "é", count: 50_000) + "2"]
        let completion = try await processor.completeCycle(subjects.enumerated().map { event("l\($0.offset)", $0.element, .nodeAdded) }, executionID: "long")
        #expect(completion.rejected.isEmpty)
        let pages = try FileManager.default.contentsOfDirectory(atPath: "\(templates.output)/nodes")
        #expect(pages.count == 2 && pages.allSatisfy { $0.utf8.count <= 255 })
        #expect(Set(try templates.directoryLinks()) == Set(pages.map { "nodes/\($0)" }))
    }

    @Test("Formats: the extension decides unless format: says; an output without a known extension needs format:")
    func formats() async throws {
        #expect(OutputFormat.implied(byPath: "a/b.JSON") == .json && OutputFormat.implied(byPath: "x.htm") == .html)
        #expect(OutputFormat.implied(byPath: "feed.svg") == .xml && OutputFormat.implied(byPath: "notes.md") == .text)
        #expect(OutputFormat.implied(byPath: "data.csv") == nil && OutputFormat.implied(byPath: "nodes/{{subject}}") == nil)

        let workspace = try TemplateWorkspace(manifest: "artifacts:\n  - { name: a, template: t, output: data.csv }", templates: ["t": "x"])
        let error = #expect(throws: TemplateError.self) { try TemplateManifest.load(from: workspace.templates) }
        #expect(error?.description.contains("set format: to one of json, html, xml, text") == true, "\(String(describing: error))")
        let unknown = try TemplateWorkspace(manifest: "artifacts:\n  - { name: a, template: t, output: a.txt, format: yaml }", templates: ["t": "x"])
        let formatError = #expect(throws: TemplateError.self) { try TemplateManifest.load(from: unknown.templates) }
        #expect(formatError?.description.contains("format 'yaml' is not one of json, html, xml, text") == true, "\(String(describing: formatError))")

        // format: json on a .txt file escapes for JSON and validates as JSON; partials escape like their includer.
        let manifest = """
            artifacts:
              - { name: data, template: data, output: "nodes/{{subject}}.txt", format: json }
              - { name: page, template: page, output: "pages/{{subject}}.html" }
              - { name: raw, template: raw, output: "raw/{{subject}}.txt" }
            """
        let mixed = try TemplateWorkspace(
            manifest: manifest,
            templates: ["data": "{\"s\": \"{{> quoted}}\"}", "page": "<p>{{> quoted}}</p>", "quoted": "{{subject}}", "raw": "{{subject}}"])
        let processor = try await TemplateProcessor(templatesDirectory: mixed.templates, outputDirectory: mixed.output)
        _ = try await processor.completeCycle([event("1", "a\"<b>\t", .nodeAdded)], executionID: "f")
        #expect(mixed.read("nodes/a%22%3Cb%3E%09.txt") == #"{"s": "a\"<b>\t"}"#)
        #expect(mixed.read("pages/a%22%3Cb%3E%09.html") == "<p>a&quot;&lt;b&gt;\t</p>")
        #expect(mixed.read("raw/a%22%3Cb%3E%09.txt") == "a\"<b>\t")
    }
}
