import Foundation
import Orchestration
import Synchronization
import Testing

@Suite("Health checks and statistics", .timeLimit(.minutes(3)))
struct HealthAndStatsTests {
    @Test("A healthy interval emits only the metric, with cycles, times, rate, concurrency and memory")
    func healthyMetric() async throws {
        let harness = try await Harness()
        _ = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 20))
        await harness.orchestrator.runHealthCheck()
        let metric = try #require(harness.telemetry.tagged(.performanceMetric, "kind", "health_check").first)
        #expect(metric.data["cycles"]?.numberValue == 1)
        #expect(metric.data["success_rate"]?.numberValue == 1)
        #expect(metric.data["concurrency"]?.numberValue == 4)
        #expect(metric.data["memory_bytes"]?.numberValue == 100)
        #expect(metric.data["p95_cycle_time_ms"] != nil && metric.data["events_per_second"] != nil)
        #expect(harness.telemetry.of(.performanceWarning).isEmpty && harness.telemetry.of(.performanceAlert).isEmpty)
        await harness.orchestrator.stop()
    }

    @Test("Low success rate and slow cycles warn")
    func warnings() async throws {
        let clock = FastForwardClock()
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 1, targetCycleMs: 100), environment: Fixtures.environment(clock: clock),
            processor: ClosureProcessor { _, context in
                if context.position.offset == 0 { try await clock.sleep(for: .milliseconds(500)) }
                if context.position.offset % 2 == 0 { throw ProcessingError.permanent("no") }
                return .none
            })
        _ = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 20, partitions: 1, keys: 20))
        await harness.orchestrator.runHealthCheck()
        let reasons = Set(harness.telemetry.of(.performanceWarning).filter { $0.component == "health" }.compactMap { $0.tags["reason"] })
        #expect(reasons == ["low_success_rate", "slow_cycles"])
        // The cycle itself alerted with its failure patterns (success rate 50% < 90%).
        let alert = try #require(harness.telemetry.tagged(.performanceAlert, "reason", "low_success_rate").first)
        #expect(alert.data["patterns"]?["dead_lettered"]?.numberValue == 10)
        await harness.orchestrator.stop()
    }

    @Test("No cycle while work is pending, and memory over the limit, alert")
    func alerts() async throws {
        var config = Fixtures.config()
        config.health = HealthPolicy(memoryLimitBytes: 50)
        var environment = Fixtures.environment()
        environment.pendingWork = { 1234 }
        let harness = try await Harness(config: config, environment: environment)
        await harness.orchestrator.runHealthCheck()
        let reasons = Set(harness.telemetry.of(.performanceAlert).compactMap { $0.tags["reason"] })
        #expect(reasons == ["stalled", "memory_over_limit"])
        // With a cycle in the interval there is no stall.
        _ = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 1))
        await harness.orchestrator.runHealthCheck()
        #expect(harness.telemetry.tagged(.performanceAlert, "reason", "stalled").count == 1)
        await harness.orchestrator.stop()
    }

    @Test("The average is the exact mean and p95 the nearest-rank 95th percentile")
    func averageAndP95() async throws {
        let clock = FastForwardClock()
        let harness = try await Harness(
            environment: Fixtures.environment(clock: clock),
            processor: ClosureProcessor { event, _ in
                try await clock.sleep(for: .milliseconds(Int(event.properties["cost"]?.numberValue ?? 0)))
                return .none
            })
        for cost in (1...20).shuffled() {
            let value = Array(#"{"id":"e\#(cost)","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","properties":{"cost":\#(cost)},"source":"t"}"#.utf8)
            _ = try await harness.orchestrator.executeCycle(
                Cycle(records: [Fixtures.record(offset: Int64(cost), subject: "s", value: value)]))
        }
        let stats = harness.orchestrator.stats()
        #expect(stats.totalCycles == 20)
        #expect(stats.avgCycleTimeMs == 10.5)
        #expect(stats.p95CycleTimeMs == 19)
        #expect(stats.maxCycleTimeMs == 20)
        #expect(stats.eventsProcessed == 20 && stats.successRate == 1)
        await harness.orchestrator.stop()
    }

    @Test("The stats snapshot is Codable")
    func statsCodable() throws {
        var stats = OrchestrationStats()
        stats.totalCycles = 3
        stats.p95CycleTimeMs = 12.5
        let copy = try JSONDecoder().decode(OrchestrationStats.self, from: JSONEncoder().encode(stats))
        #expect(copy == stats)
    }
}
