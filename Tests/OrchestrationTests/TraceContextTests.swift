import Foundation
import MetricsTestKit
import Orchestration
import Synchronization
import Testing

@Suite("Trace context", .timeLimit(.minutes(1)))
struct TraceContextTests {
    static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    static let parent = "00-\(traceID)-00f067aa0ba902b7-01"

    static func traced(_ offset: Int64, subject: String, traceparent: String?, tracestate: String? = nil) -> CycleRecord {
        var record = Fixtures.record(partition: 0, offset: offset, subject: subject)
        if let traceparent { record.headers.append(("traceparent", Array(traceparent.utf8))) }
        if let tracestate { record.headers.append(("tracestate", Array(tracestate.utf8))) }
        return record
    }

    @Test("Each attempt of a traced record gets a child span of the record's trace; its dead letter carries the last one; the cycle's telemetry names the trace")
    func childSpans() async throws {
        let seen = Mutex<[EventContext]>([])
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 2),
            processor: ClosureProcessor { _, context in
                seen.withLock { $0.append(context) }
                throw ProcessingError.retriable("always")
            })
        let record = Self.traced(0, subject: "a", traceparent: Self.parent, tracestate: "vendor=1")
        _ = try await harness.orchestrator.executeCycle(Cycle(records: [record]))
        await harness.orchestrator.stop()

        let contexts = seen.withLock { $0 }
        #expect(contexts.count == 2)
        let parts = contexts.compactMap { $0.traceparent?.split(separator: "-").map(String.init) }
        #expect(parts.count == 2 && parts.allSatisfy { $0.count == 4 && $0[0] == "00" && $0[1] == Self.traceID && $0[3] == "01" })
        let spans = Set(parts.map { $0[2] })
        #expect(spans.count == 2 && !spans.contains("00f067aa0ba902b7"), "a new span per attempt, none the record's own: \(spans)")
        #expect(contexts.allSatisfy { $0.tracestate == "vendor=1" })

        let letter = try #require(harness.deadLetters.all.first)
        #expect(letter.traceparent == contexts.last?.traceparent)
        #expect(letter.tracestate == "vendor=1")
        let completed = harness.telemetry.tagged(.regenerationCompleted, "scope", "cycle")
        #expect(completed.first?.data["trace_ids"] == [.string(Self.traceID)])
    }

    @Test("An invalid traceparent is counted and ignored: the record is processed untraced")
    func invalidIgnored() async throws {
        let metrics = TestMetrics()
        var environment = Fixtures.environment()
        environment.metrics = metrics
        let seen = Mutex<[EventContext]>([])
        let harness = try await Harness(
            environment: environment,
            processor: ClosureProcessor { _, context in
                seen.withLock { $0.append(context) }
                return .none
            })
        let records = [
            Self.traced(0, subject: "a", traceparent: "00-not-a-trace-01"),
            Self.traced(1, subject: "b", traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),  // all-zero id
            Self.traced(2, subject: "c", traceparent: nil),
        ]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        await harness.orchestrator.stop()
        #expect(result.execution.tasksSucceeded == 3)
        #expect(seen.withLock { $0 }.allSatisfy { $0.traceparent == nil })
        #expect(try metrics.expectCounter("regen_traceparent_invalid_total").totalValue == 2)
        #expect(harness.telemetry.tagged(.regenerationCompleted, "scope", "cycle").first?.data["trace_ids"] == nil)
    }
}
