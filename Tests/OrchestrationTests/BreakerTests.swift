import Orchestration
import Synchronization
import Testing

@Suite("Circuit breaker", .timeLimit(.minutes(3)))
struct BreakerTests {
    static let policy = BreakerPolicy(windowSize: 10, minimumCalls: 10, failureRatio: 0.5, cooldownMs: 1000, maxCooldownMs: 3000)

    @Test("A failing processor opens the breaker: the rest is left not done and an alert goes out")
    func opensAndLeavesUndone() async throws {
        let clock = FastForwardClock()
        let healthy = Mutex(false)
        let calls = Mutex(0)
        let harness = try await Harness(
            config: Fixtures.config(concurrency: 1, maxAttempts: 1, breaker: Self.policy),
            environment: Fixtures.environment(clock: clock),
            processor: ClosureProcessor { _, _ in
                calls.withLock { $0 += 1 }
                guard healthy.withLock({ $0 }) else { throw ProcessingError.retriable("downstream down") }
                return .none
            })
        let cycle = Cycle(records: (0..<30).map { Fixtures.record(offset: Int64($0), subject: "k\($0)") })
        let first = try await harness.orchestrator.executeCycle(cycle)
        #expect(calls.withLock { $0 } == 10, "dispatched past the open breaker")
        #expect(first.execution.deadLettered == 10 && first.execution.notDone == 20)
        #expect(first.partitions.first?.commitOffset == 10 && first.partitions.first?.firstNotDone == 10)
        #expect(harness.orchestrator.breakerState == .open)
        #expect(harness.telemetry.tagged(.performanceAlert, "reason", "circuit_open").count == 1)

        // Still cooling down: nothing is dispatched.
        let undone = Cycle(records: Array(cycle.records[10...]))
        let second = try await harness.orchestrator.executeCycle(undone)
        #expect(second.execution.notDone == 20 && calls.withLock { $0 } == 10)

        // After the cooldown one probe goes out; it succeeds, the breaker closes, all is processed.
        clock.advance(by: .seconds(1))
        #expect(harness.orchestrator.breakerState == .halfOpen)
        healthy.withLock { $0 = true }
        let third = try await harness.orchestrator.executeCycle(undone)
        #expect(third.execution.tasksSucceeded == 20 && third.execution.notDone == 0)
        #expect(third.partitions.first?.commitOffset == 30)
        #expect(harness.orchestrator.breakerState == .closed)
        await harness.orchestrator.stop()
    }

    @Test("A failed probe reopens the breaker with a doubled cooldown, capped")
    func failedProbeDoublesCooldown() {
        let clock = FastForwardClock()
        let breaker = CircuitBreaker(policy: Self.policy, clock: clock)
        for _ in 0..<10 { breaker.record(success: false, permit: breaker.acquire()) }
        #expect(breaker.state == .open && breaker.acquire() == .rejected)
        var cooldowns: [Duration] = []
        for _ in 0..<3 {
            clock.advance(by: .seconds(5))
            let permit = breaker.acquire()
            #expect(permit == .probe)
            #expect(breaker.acquire() == .rejected, "a second probe while the first is in flight")
            breaker.record(success: false, permit: permit)
            cooldowns.append(breaker.drainTransitions().last!.cooldown)
        }
        #expect(cooldowns == [.seconds(2), .seconds(3), .seconds(3)])
        clock.advance(by: .milliseconds(2999))
        #expect(breaker.acquire() == .rejected)
    }

    @Test("Failures below the ratio, or before the minimum calls, keep it closed")
    func staysClosed() {
        let early = CircuitBreaker(policy: Self.policy, clock: FastForwardClock())
        for _ in 0..<9 { early.record(success: false, permit: early.acquire()) }
        #expect(early.state == .closed)
        let mixed = CircuitBreaker(policy: Self.policy, clock: FastForwardClock())
        for index in 0..<40 { mixed.record(success: index % 3 != 0, permit: mixed.acquire()) }
        #expect(mixed.state == .closed)
        for _ in 0..<10 { mixed.record(success: false, permit: mixed.acquire()) }
        #expect(mixed.state == .open)
    }
}
