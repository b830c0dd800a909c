import CoreMetrics
import Foundation
import MetricsTestKit
import Orchestration
import Testing

@Suite("Metrics", .timeLimit(.minutes(1)))
struct MetricsTests {
    @Test("A cycle counts its records by outcome and dead letters by reason, attempts, retries, the cycle and its size")
    func cycleCounters() async throws {
        let metrics = TestMetrics()
        var environment = Fixtures.environment()
        environment.metrics = metrics
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 2), environment: environment,
            processor: ClosureProcessor { event, context in
                if event.subject == "node-1" { throw ProcessingError.permanent("refused") }
                if event.subject == "node-2" && context.attempt == 1 { throw ProcessingError.retriable("once") }
                return .none
            })
        var records = Fixtures.cycle(count: 20, partitions: 1, keys: 10).records
        records.append(Fixtures.record(partition: 0, offset: 20, subject: "node-3", value: Array("{not json".utf8)))
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        await harness.orchestrator.stop()

        #expect(try metrics.expectCounter("regen_events_total", [("outcome", "succeeded")]).totalValue == 18)
        #expect(try metrics.expectCounter("regen_events_total", [("outcome", "dead_lettered")]).totalValue == 3)
        #expect(try metrics.expectCounter("regen_events_total", [("outcome", "not_done")]).totalValue == 0)
        #expect(result.execution.tasksSucceeded == 18 && result.execution.deadLettered == 3)
        #expect(try metrics.expectCounter("regen_dead_letters_total", [("reason", "processing_failed")]).totalValue == 2)
        #expect(try metrics.expectCounter("regen_dead_letters_total", [("reason", "invalid_input")]).totalValue == 1)
        #expect(try metrics.expectCounter("regen_retries_total").totalValue == Int64(result.execution.retries))
        #expect(result.execution.retries == 2)
        // 20 decodable records, one attempt each, and the two retries of node-2.
        #expect(try metrics.expectCounter("regen_attempts_total").totalValue == 22)
        #expect(try metrics.expectCounter("regen_cycles_total").totalValue == 1)
        #expect(try metrics.expectTimer("regen_cycle_duration_seconds").values.count == 1)
        #expect(try metrics.expectRecorder("regen_cycle_events").lastValue == 21)
    }

    @Test("The rate limiter counts the acquisitions that had to wait")
    func rateLimiterWaits() async throws {
        let metrics = TestMetrics()
        let waits = Counter(label: "regen_rate_limiter_waits_total", factory: metrics)
        let limiter = RateLimiter(policy: RateLimitPolicy(eventsPerSecond: 10, burst: 5), clock: FastForwardClock(), waits: waits)
        for _ in 0..<8 { try await limiter.acquire() }
        #expect(try metrics.expectCounter(waits).totalValue == 3)
    }
}
