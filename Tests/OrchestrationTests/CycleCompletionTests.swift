import Orchestration
import Synchronization
import Testing

/// A processor that does its real work once per cycle.
final class CoalescingProcessor: EventProcessor {
    let fail: Bool
    init(fail: Bool) { self.fail = fail }
    let calls = Mutex<[[CompletedEvent]]>([])

    func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport { .none }

    func completeCycle(_ events: [CompletedEvent], executionID: String) async throws -> ProcessingReport {
        calls.withLock { $0.append(events) }
        if fail { throw ProcessingError.retriable("render failed") }
        return ProcessingReport(regenerations: Set(events.map(\.event.subject)).count, deployments: 1)
    }
}

@Suite("Cycle completion")
struct CycleCompletionTests {
    @Test("completeCycle sees the cycle's succeeded events once, in offset order per partition, and its report counts")
    func coalesces() async throws {
        let processor = CoalescingProcessor(fail: false)
        let harness = try await Harness(processor: processor)
        var records = (0..<1000).map { Fixtures.record(offset: Int64($0), subject: "s\($0 % 10)") }
        records.append(Fixtures.record(offset: 1000, subject: "bad", value: Array("nope".utf8)))
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        let calls = processor.calls.withLock { $0 }
        #expect(calls.count == 1)
        #expect(calls.first?.map(\.position.offset) == (0..<1000).map(Int64.init))
        #expect(result.execution.regenerations == 10 && result.execution.deployments == 1)
        #expect(result.partitions.first?.commitOffset == 1001)
        await harness.orchestrator.stop()
    }

    @Test("When completeCycle fails, the succeeded events are not done and nothing past them is committed")
    func failureLeavesEventsUndone() async throws {
        let harness = try await Harness(processor: CoalescingProcessor(fail: true))
        let records = [
            Fixtures.record(offset: 0, subject: "bad", value: Array("{".utf8)), Fixtures.record(offset: 1, subject: "a"),
            Fixtures.record(offset: 2, subject: "b"),
        ]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        #expect(result.execution.tasksSucceeded == 0 && result.execution.notDone == 2 && result.execution.deadLettered == 1)
        #expect(result.partitions.first?.commitOffset == 1 && result.partitions.first?.firstNotDone == 1)
        #expect(harness.telemetry.tagged(.regenerationFailed, "reason", "cycle_completion_failed").count == 1)
        await harness.orchestrator.stop()
    }
}
