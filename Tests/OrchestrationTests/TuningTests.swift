import Foundation
import Orchestration
import Synchronization
import Testing

@Suite("Rate limiting and adaptive optimization", .timeLimit(.minutes(3)))
struct TuningTests {
    @Test("The token bucket lets a burst through, then holds the rate on a manual clock")
    func rateLimitHolds() async throws {
        let clock = FastForwardClock()
        let limiter = RateLimiter(policy: RateLimitPolicy(eventsPerSecond: 10, burst: 5), clock: clock)
        for _ in 0..<25 { try await limiter.acquire() }
        // 5 free, then 20 at 10/s: the clock had to move 2 s.
        #expect(clock.now == .seconds(2))
        #expect(clock.sleeps.count == 20)
        clock.advance(by: .seconds(60))  // refills to the burst, no more
        let before = clock.now
        for _ in 0..<6 { try await limiter.acquire() }
        #expect(clock.now - before == .milliseconds(100))
    }

    @Test("The orchestrator dispatches no faster than the rate limit")
    func orchestratorRespectsRate() async throws {
        let clock = FastForwardClock()
        var config = Fixtures.config(concurrency: 8)
        config.rateLimit = RateLimitPolicy(eventsPerSecond: 100, burst: 10)
        let harness = try await Harness(config: config, environment: Fixtures.environment(clock: clock))
        let result = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 110, keys: 30))
        #expect(result.execution.tasksSucceeded == 110)
        // 10 from the burst, 100 more at 100/s: at least a second must have passed.
        #expect(clock.now >= .seconds(1))
        await harness.orchestrator.stop()
    }

    @Test("AIMD adds one when saturated under target, halves when over target, within bounds")
    func aimdMovesWithinBounds() async throws {
        let clock = FastForwardClock()
        let cycleCost = Mutex(Duration.milliseconds(10))
        var config = Fixtures.config(concurrency: 2, adaptive: true, targetCycleMs: 1000)
        config.adaptive = AdaptivePolicy(minConcurrency: 1, maxConcurrency: 4, evaluateEveryCycles: 2)
        let harness = try await Harness(
            config: config, environment: Fixtures.environment(clock: clock),
            processor: ClosureProcessor { _, context in
                // Only the first event of a cycle advances time, so the cycle lasts `cycleCost`.
                if context.position.offset == 0 { try await clock.sleep(for: cycleCost.withLock { $0 }) }
                return .none
            })
        let cycle = Fixtures.cycle(count: 40, partitions: 1, keys: 40)
        var seen: [Int] = []
        for _ in 0..<8 {
            _ = try await harness.orchestrator.executeCycle(cycle)
            seen.append(harness.orchestrator.stats().currentConcurrency)
        }
        #expect(seen == [2, 3, 3, 4, 4, 4, 4, 4], "never above max")
        cycleCost.withLock { $0 = .seconds(5) }
        for _ in 0..<6 {
            _ = try await harness.orchestrator.executeCycle(cycle)
            seen.append(harness.orchestrator.stats().currentConcurrency)
        }
        #expect(seen.suffix(6) == [2, 2, 1, 1, 1, 1], "halved every second cycle, never below min")
        let changes = harness.telemetry.tagged(.performanceMetric, "kind", "adaptive_optimization")
        #expect(changes.map { $0.data["new"]?.numberValue } == [3, 4, 2, 1])
        #expect(changes.first?.data["old"]?.numberValue == 2)
        #expect(changes.last?.data["reason"]?.stringValue?.contains("over the 1000 ms target") == true)
        #expect(harness.telemetry.tagged(.performanceWarning, "reason", "cycle_over_target").count == 6)
        await harness.orchestrator.stop()
    }

    @Test("Timeouts and failures lower concurrency even under target")
    func aimdBacksOffOnFailures() async throws {
        var config = Fixtures.config(concurrency: 8, maxAttempts: 1, adaptive: true)
        config.adaptive = AdaptivePolicy(minConcurrency: 2, maxConcurrency: 16, evaluateEveryCycles: 1)
        let harness = try await Harness(
            config: config,
            processor: ClosureProcessor { _, context in
                if context.position.offset % 4 == 0 { throw ProcessingError.retriable("flaky") }
                return .none
            })
        _ = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 40, partitions: 1, keys: 40))
        #expect(harness.orchestrator.stats().currentConcurrency == 4)
        let change = harness.telemetry.tagged(.performanceMetric, "kind", "adaptive_optimization").first
        #expect(change?.data["reason"]?.stringValue?.contains("failure rate 25%") == true)
        await harness.orchestrator.stop()
    }
}
