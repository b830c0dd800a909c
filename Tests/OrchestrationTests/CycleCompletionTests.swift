import Orchestration
import Synchronization
import Testing

/// A processor that does its real work once per cycle: it fails as a whole while
/// `failing` is set, and rejects the events of the subjects in `poison`.
final class CoalescingProcessor: EventProcessor {
    let failing: Mutex<Bool>
    let poison: Set<String>
    init(fail: Bool, poison: Set<String> = []) {
        failing = Mutex(fail)
        self.poison = poison
    }
    let calls = Mutex<[[CompletedEvent]]>([])

    func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport { .none }

    func completeCycle(_ events: [CompletedEvent], executionID: String) async throws -> CycleCompletion {
        calls.withLock { $0.append(events) }
        if failing.withLock({ $0 }) { throw ProcessingError.retriable("render failed") }
        var rejected: [SourcePosition: String] = [:]
        for completed in events where poison.contains(completed.event.subject) {
            rejected[completed.position] = "artifact 'page' does not render \(completed.event.subject)"
        }
        let good = events.filter { !poison.contains($0.event.subject) }
        return CycleCompletion(
            report: ProcessingReport(regenerations: Set(good.map(\.event.subject)).count, deployments: 1), rejected: rejected)
    }
}

@Suite("Cycle completion", .timeLimit(.minutes(3)))
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

    @Test("Events the processor rejects are dead-lettered with its reason; the rest of the cycle is done and committed")
    func rejectedEventsAreDeadLettered() async throws {
        let harness = try await Harness(processor: CoalescingProcessor(fail: false, poison: ["p"]))
        let records = (0..<20).map { Fixtures.record(offset: Int64($0), subject: $0 % 7 == 3 ? "p" : "s\($0 % 5)") }
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        let poisoned = records.filter { $0.key == Array("p".utf8) }.map(\.position)
        #expect(Set(harness.deadLetters.all.map(\.record.position)) == Set(poisoned))
        for letter in harness.deadLetters.all {
            #expect(letter.reason == "regeneration failed: artifact 'page' does not render p")
            #expect(letter.attempts == 1 && !letter.invalidInput)
        }
        #expect(result.execution.deadLettered == poisoned.count && result.execution.tasksSucceeded == 20 - poisoned.count)
        #expect(result.execution.tasksFailed == poisoned.count && result.execution.notDone == 0)
        #expect(result.partitions.first?.commitOffset == 20 && result.partitions.first?.firstNotDone == nil)
        await harness.orchestrator.stop()
    }

    @Test("A rejected event whose dead letter is not stored stays not done, and so do the later events of its key")
    func rejectedButNotStored() async throws {
        let harness = try await Harness(processor: CoalescingProcessor(fail: false, poison: ["p"]))
        harness.deadLetters.failing = true
        // Key "k" carries a poison event at offset 1 and a good one at offset 3.
        let good = Fixtures.eventJSON(id: "g", subject: "g")
        let records = [
            Fixtures.record(offset: 0, subject: "a"),
            CycleRecord(position: SourcePosition(topic: "changes", partition: 0, offset: 1), key: Array("k".utf8), value: Fixtures.eventJSON(id: "x", subject: "p")),
            Fixtures.record(offset: 2, subject: "b"),
            CycleRecord(position: SourcePosition(topic: "changes", partition: 0, offset: 3), key: Array("k".utf8), value: good),
        ]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        #expect(result.execution.notDone == 2 && result.execution.tasksSucceeded == 2)
        #expect(result.partitions.first?.commitOffset == 1 && result.partitions.first?.firstNotDone == 1)
        #expect(result.partitions.first?.doneOffsets == [0, 2])
        await harness.orchestrator.stop()
    }

    @Test("Completion failing cycle after cycle backs off exponentially up to the cap, raises completion_failing alerts, and recovers")
    func failingCompletionBacksOff() async throws {
        let clock = FastForwardClock()
        let processor = CoalescingProcessor(fail: true)
        let harness = try await Harness(environment: Fixtures.environment(clock: clock), processor: processor)
        for round in 0..<6 {
            let result = try await harness.orchestrator.executeCycle(Cycle(records: [Fixtures.record(offset: 0, subject: "a\(round)")]))
            #expect(result.execution.notDone == 1)
        }
        // Retry policy of the fixtures: 100 ms, doubling, at most 1 s.
        #expect(clock.sleeps == [100, 200, 400, 800, 1000, 1000].map { Duration.milliseconds($0) })
        let alerts = harness.telemetry.tagged(.performanceAlert, "reason", "completion_failing")
        #expect(alerts.map { $0.data["consecutive_failures"] } == (1...6).map { JSONValue.int($0) })
        #expect(alerts.last?.data["backoff_ms"] == .number(1000))

        processor.failing.withLock { $0 = false }
        let recovered = try await harness.orchestrator.executeCycle(Cycle(records: [Fixtures.record(offset: 0, subject: "a")]))
        #expect(recovered.execution.tasksSucceeded == 1 && clock.sleeps.count == 6, "a good completion waits for nothing")
        processor.failing.withLock { $0 = true }
        _ = try await harness.orchestrator.executeCycle(Cycle(records: [Fixtures.record(offset: 0, subject: "b")]))
        #expect(clock.sleeps.last == .milliseconds(100), "the backoff starts over after a success")
        await harness.orchestrator.stop()
    }
}
