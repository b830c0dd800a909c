import Orchestration
import Synchronization
import Testing

@Suite("Lifecycle", .timeLimit(.minutes(3)))
struct LifecycleTests {
    @Test("start emits regeneration_started with the configuration; a second start fails")
    func doubleStart() async throws {
        let harness = try await Harness()
        #expect(await harness.orchestrator.isRunning)
        let error = await #expect(throws: OrchestrationError.self) { try await harness.orchestrator.start() }
        #expect(error?.code == .alreadyRunning)
        let started = harness.telemetry.of(.regenerationStarted)
        #expect(started.count == 1)
        #expect(started.first?.data["config"]?["concurrency"]?.numberValue == 4)
        #expect(started.first?.schema == "regen.telemetry/v1")
        await harness.orchestrator.stop()
        #expect(await !harness.orchestrator.isRunning)
    }

    @Test("A cycle is refused before start and after stop")
    func cycleNeedsRunning() async throws {
        let orchestrator = try RegenerationOrchestrator(
            config: Fixtures.config(), processor: ClosureProcessor { _, _ in .none }, telemetry: RecordingTelemetry(),
            deadLetters: RecordingDeadLetters(), environment: Fixtures.environment())
        await #expect(throws: OrchestrationError.self) { try await orchestrator.executeCycle(Fixtures.cycle(count: 1)) }
        try await orchestrator.start()
        _ = try await orchestrator.executeCycle(Fixtures.cycle(count: 1))
        await orchestrator.stop()
        let error = await #expect(throws: OrchestrationError.self) { try await orchestrator.executeCycle(Fixtures.cycle(count: 1)) }
        #expect(error?.code == .notRunning)
        try await orchestrator.start()  // restartable after a stop
        await orchestrator.stop()
    }

    @Test("stop waits for the cycle in flight, then emits the final regeneration_completed")
    func stopWaitsForCycle() async throws {
        let gate = Gate()
        let harness = try await Harness(processor: ClosureProcessor { _, _ in
            await gate.wait()
            return ProcessingReport(regenerations: 1)
        })
        let cycle = Task { try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 8)) }
        await gate.waitForWaiters(1)
        let stopped = Task { await harness.orchestrator.stop() }
        try await Task.sleep(for: .milliseconds(100))
        #expect(harness.telemetry.tagged(.regenerationCompleted, "scope", "orchestrator").isEmpty, "stop finished before the cycle")
        gate.open()
        let result = try await cycle.value
        await stopped.value
        #expect(result.execution.tasksSucceeded == 8)
        let completions = harness.telemetry.of(.regenerationCompleted)
        #expect(completions.map { $0.tags["scope"] } == ["cycle", "orchestrator"])
        #expect(completions.last?.data["events_processed"]?.numberValue == 8)
        #expect(completions.last?.data["regenerations_triggered"]?.numberValue == 8)
    }

    @Test("The health loop runs on the injected clock and is gone after stop")
    func healthLoopLifecycle() async throws {
        let clock = ManualClock()
        let harness = try await Harness(config: Fixtures.config(health: 60), environment: Fixtures.environment(clock: clock))
        #expect(await clock.waitForSleepers(1))
        clock.advance(by: .seconds(60))
        #expect(await clock.waitForSleepers(1))  // slept again after one check
        #expect(harness.telemetry.tagged(.performanceMetric, "kind", "health_check").count == 1)
        clock.advance(by: .seconds(60))
        #expect(await clock.waitForSleepers(1))
        #expect(harness.telemetry.tagged(.performanceMetric, "kind", "health_check").count == 2)
        await harness.orchestrator.stop()
        #expect(clock.sleeperCount == 0, "the health loop outlived stop()")
        clock.advance(by: .seconds(600))
        try await Task.sleep(for: .milliseconds(50))
        #expect(harness.telemetry.tagged(.performanceMetric, "kind", "health_check").count == 2)
    }
}

/// Holds processors until opened.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>], count: Int)>((false, [], 0))

    func wait() async {
        await withCheckedContinuation { continuation in
            let proceed = state.withLock { s -> Bool in
                s.count += 1
                if s.open { return true }
                s.waiters.append(continuation)
                return false
            }
            if proceed { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitForWaiters(_ count: Int) async {
        while state.withLock({ $0.count }) < count { try? await Task.sleep(for: .milliseconds(2)) }
    }
}
