import Foundation
import Orchestration
import Testing

@Suite("Configuration and wire formats", .timeLimit(.minutes(3)))
struct ModelTests {
    @Test("Impossible configuration is rejected naming field, value and what is allowed")
    func invalidConfiguration() {
        var config = OrchestratorConfig(concurrency: 0, eventTimeoutMs: -5)
        config.adaptive = AdaptivePolicy(minConcurrency: 8, maxConcurrency: 2)
        config.retry.multiplier = 0.5
        let error = #expect(throws: ConfigurationErrors.self) { try config.validate() }
        let fields = Set(error?.errors.map(\.field) ?? [])
        #expect(fields.isSuperset(of: ["concurrency", "eventTimeoutMs", "adaptive.maxConcurrency", "retry.multiplier"]))
        let concurrency = error?.errors.first { $0.field == "concurrency" }
        #expect(concurrency?.value == "0" && concurrency?.allowed == "an integer >= 1")
        #expect(error?.description.contains("adaptive.maxConcurrency = 2 is not allowed: must be >= adaptive.minConcurrency (8)") == true)
        #expect(throws: ConfigurationErrors.self) {
            try RegenerationOrchestrator(
                config: config, processor: ClosureProcessor { _, _ in .none }, telemetry: RecordingTelemetry(),
                deadLetters: RecordingDeadLetters())
        }
    }

    @Test("Defaults follow the seed; a partial file keeps the rest at their defaults")
    func defaultsAndPartialDecoding() throws {
        let defaults = OrchestratorConfig()
        #expect(defaults.autonomous && defaults.adaptiveOptimization)
        #expect(defaults.concurrency == ProcessInfo.processInfo.activeProcessorCount)
        #expect(defaults.targetCycleMs == 30_000 && defaults.healthCheckIntervalSecs == 60)
        try defaults.validate()
        let json = #"{"concurrency": 3, "retry": {"maxAttempts": 9}, "cycle": {"maxEvents": 500}}"#
        let decoded = try JSONDecoder().decode(OrchestratorConfig.self, from: Data(json.utf8))
        #expect(decoded.concurrency == 3 && decoded.retry.maxAttempts == 9 && decoded.retry.initialBackoffMs == 100)
        #expect(decoded.cycle.maxEvents == 500 && decoded.cycle.maxWaitMs == 1000 && decoded.targetCycleMs == 30_000)
        let roundTrip = try JSONDecoder().decode(OrchestratorConfig.self, from: JSONEncoder().encode(decoded))
        #expect(roundTrip == decoded)
    }

    @Test(
        "Bad change events are rejected naming the field",
        arguments: [
            (#"{"change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#, "id", "missing"),
            (#"{"id":7,"change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#, "id", "expected a string"),
            (#"{"id":"x","change_type":"node_melted","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#, "change_type", "node_melted"),
            (#"{"id":"x","change_type":"node_added","timestamp":"yesterday","subject":"s"}"#, "timestamp", "RFC 3339"),
            (#"{"id":"x","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":""}"#, "subject", "empty"),
            (#"{"id":"x","change_type":"edge_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","object":"o"}"#, "predicate", "required"),
            (#"{"id":"x","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","properties":[1]}"#, "properties", "object"),
            (#"{"id":"x","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","metadata":{"a":1}}"#, "metadata.a", "string"),
        ])
    func invalidEvents(json: String, field: String, reason: String) {
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(Array(json.utf8)) }
        #expect(error?.field == field)
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("Not JSON, empty and oversize records are rejected as a whole")
    func invalidRecords() {
        for bytes: [UInt8]? in [nil, [], Array("{\"id\":".utf8), [0xff, 0xfe, 0x00]] {
            let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(bytes) }
            #expect(error?.field == nil)
        }
        let big = Fixtures.eventJSON(id: "x", subject: String(repeating: "s", count: 2000))
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(big, maxBytes: 1000) }
        #expect(error?.reason.contains("exceeds the limit of 1000") == true)
    }

    @Test(
        "Hostile records are refused saying where and why, without crashing",
        arguments: [
            ("deeply nested", Hostile.withProperties(String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)),
             nil, "nested more than 512 levels deep"),
            ("invalid UTF-8", Array(#"{"id":"x"#.utf8) + [0xC3, 0x28] + Array(#"","subject":"s"}"#.utf8), nil, "invalid UTF-8 at byte 8"),
            ("control character", Array("{\"id\":\"a\u{1}b\"}".utf8), nil, "unescaped control character 0x01 in a string at byte 8"),
            ("truncated in a string", Array(#"{"id":"x","subj"#.utf8), nil, "ends inside a string"),
            ("truncated", Array(#"{"id":"x","properties":{"a":[1,"#.utf8), nil, "ends with 3 unclosed brackets"),
            ("trailing garbage", Hostile.withProperties("{}") + Array(" x".utf8), nil, "unexpected data after the end of the value"),
            ("whitespace only", Array(" \n\t ".utf8), nil, "only whitespace"),
            ("top-level null", Array("null".utf8), nil, "null where an object is required"),
            ("top-level array", Array("[1,2]".utf8), nil, "expected an object"),
            ("number out of range", Hostile.withProperties(#"{"n":{"m":1e999}}"#), "properties.n.m", "beyond the range of a Double"),
        ] as [(String, [UInt8], String?, String)])
    func hostileRecords(kind: String, bytes: [UInt8], field: String?, reason: String) {
        let error = #expect(throws: InvalidChangeEvent.self, "\(kind)") { try ChangeEvent.decode(bytes) }
        #expect(error?.field == field, "\(kind): \(String(describing: error))")
        #expect(error?.description.contains(reason) == true, "\(kind): \(String(describing: error))")
    }

    @Test("Nesting up to the parser's limit, huge numbers and escaped NULs decode")
    func hostileButValid() throws {
        let depth = 500
        let nested = try ChangeEvent.decode(Hostile.withProperties(#"{"a":"# + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"))
        var level = nested.properties["a"]
        var levels = 0
        while case .array(let items)? = level { levels += 1; level = items.first }
        #expect(levels == depth)
        let big = try ChangeEvent.decode(Hostile.withProperties(#"{"n":123456789012345678901234567890}"#))
        #expect(big.properties["n"]?.numberValue == 1.2345678901234568e29)
        #expect(try ChangeEvent.decode(Array(#"{"id":"a\u0000b","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#.utf8)).id == "a\u{0}b")
    }

    @Test("Every input of the fuzzers' kept corpora decodes to an event that round-trips, or is refused with a reason", arguments: ["decoder", "differential"])
    func fuzzCorpus(name: String) throws {
        let files = try Fixtures.fuzzCorpus(name)
        #expect(files.count >= 18, "the \(name) corpus is missing")
        var decoded = 0
        for file in files {
            let event: ChangeEvent
            do {
                event = try ChangeEvent.decode(Array(try Data(contentsOf: file)))
            } catch let error as InvalidChangeEvent {
                #expect(!error.reason.isEmpty, "\(file.lastPathComponent)")
                continue
            }
            var again = try ChangeEvent.decode(Array(JSONEncoder().encode(event)), maxBytes: .max)
            #expect(abs(again.timestamp.timeIntervalSince(event.timestamp)) <= 0.000_501, "\(file.lastPathComponent)")
            again.timestamp = event.timestamp
            #expect(again == event, "\(file.lastPathComponent)")
            decoded += 1
        }
        #expect(decoded > 0 && decoded < files.count, "the corpus should hold both valid and invalid events")
    }

    @Test(
        "Timestamps are written rounded to the millisecond, so re-encoding never moves them (found by the fuzzer)",
        arguments: [
            ("2025-10-10T12:00:00.061+02:00", "2025-10-10T10:00:00.061Z"), ("2025-10-10T12:00:00.999Z", "2025-10-10T12:00:00.999Z"),
            ("2025-10-10T12:00:00Z", "2025-10-10T12:00:00.000Z"), ("2025-10-10T12:00:00.0615Z", "2025-10-10T12:00:00.062Z"),
            ("1969-12-31T23:59:59.250Z", "1969-12-31T23:59:59.250Z"),
        ])
    func timestampPrecision(written: String, reformatted: String) throws {
        let date = try #require(RFC3339.parse(written))
        #expect(RFC3339.format(date) == reformatted)
        #expect(RFC3339.format(try #require(RFC3339.parse(reformatted))) == reformatted)
    }

    @Test("A change event and a telemetry event round-trip through JSON with snake_case keys")
    func wireRoundTrip() throws {
        let json = #"{"id":"e1","change_type":"edge_added","timestamp":"2025-10-10T12:00:00.250+02:00","subject":"a","predicate":"p","object":"b","properties":{"n":1.5,"tags":["x"],"nested":{"ok":true},"none":null},"source":"up","metadata":{"k":"v"}}"#
        let event = try ChangeEvent.decode(Array(json.utf8))
        #expect(event.changeType == .edgeAdded && event.properties["nested"]?["ok"] == .bool(true))
        #expect(event.timestamp == Date(timeIntervalSince1970: 1_760_090_400.25))
        let encoded = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
        #expect(encoded.contains(#""change_type":"edge_added""#))
        #expect(try ChangeEvent.decode(Array(encoded.utf8)) == event)

        let telemetry = TelemetryEvent(
            eventType: .performanceWarning, timestamp: Date(timeIntervalSince1970: 0), component: "health", instance: "i",
            data: ["a": 1], tags: ["reason": "slow"])
        let text = String(decoding: try JSONEncoder().encode(telemetry), as: UTF8.self)
        #expect(text.contains(#""event_type":"performance_warning""#) && text.contains(#""schema":"regen.telemetry\/v1""#))
        #expect(try JSONDecoder().decode(TelemetryEvent.self, from: Data(text.utf8)) == telemetry)
    }

    @Test("The priority header orders records; a bad one counts as 0")
    func priorityHeader() {
        let position = SourcePosition(topic: "t", partition: 0, offset: 0)
        #expect(CycleRecord(position: position, value: nil, headers: [("priority", Array(" 7".utf8))]).priority == 7)
        #expect(CycleRecord(position: position, value: nil, headers: [("priority", Array("high".utf8))]).priority == 0)
        #expect(CycleRecord(position: position, value: nil, headers: [("priority", nil)]).priority == 0)
    }
}

enum Hostile {
    /// A valid event but for its `properties`, which are `json` verbatim.
    static func withProperties(_ json: String) -> [UInt8] {
        Array((#"{"id":"x","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","properties":"# + json + "}").utf8)
    }
}
