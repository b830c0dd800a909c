import Orchestration
import Synchronization
import Testing

@Suite("Failures, retries and dead letters", .timeLimit(.minutes(3)))
struct FailureTests {
    @Test("Retriable failures are retried with full-jitter backoff, then succeed")
    func retriesThenSuccess() async throws {
        let clock = FastForwardClock()
        let attempts = Mutex(0)
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 5), environment: Fixtures.environment(clock: clock, random: 0.5),
            processor: ClosureProcessor { _, context in
                attempts.withLock { $0 += 1 }
                if context.attempt < 3 { throw ProcessingError.retriable("downstream busy") }
                return .none
            })
        let result = try await harness.orchestrator.executeCycle(Cycle(records: [Fixtures.record(offset: 0, subject: "a")]))
        #expect(result.execution.tasksSucceeded == 1 && result.execution.retries == 2)
        #expect(attempts.withLock { $0 } == 3)
        // Ceilings 100 ms then 200 ms; jitter 0.5 takes half of each.
        #expect(clock.sleeps == [.milliseconds(50), .milliseconds(100)])
        #expect(harness.deadLetters.all.isEmpty)
        await harness.orchestrator.stop()
    }

    @Test("Backoff ceilings grow exponentially up to the cap")
    func backoffCeilings() {
        let policy = RetryPolicy(maxAttempts: 10, initialBackoffMs: 100, maxBackoffMs: 1000, multiplier: 2)
        #expect((1...6).map { policy.ceiling(afterAttempt: $0) } == [100, 200, 400, 800, 1000, 1000].map { .milliseconds($0) })
    }

    @Test("Exhausted retries go to the dead-letter sink with attempts and reason; the record is done")
    func retriesExhausted() async throws {
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 3),
            processor: ClosureProcessor { _, _ in throw ProcessingError.retriable("still broken") })
        let result = try await harness.orchestrator.executeCycle(Cycle(records: [Fixtures.record(offset: 7, subject: "a")]))
        let letter = try #require(harness.deadLetters.all.first)
        #expect(letter.attempts == 3 && !letter.invalidInput)
        #expect(letter.reason.contains("still broken") && letter.reason.contains("3 attempt"))
        #expect(letter.record.position.offset == 7)
        #expect(result.execution.deadLettered == 1 && result.execution.tasksFailed == 1 && result.execution.retries == 2)
        #expect(result.partitions.first?.commitOffset == 8)
        await harness.orchestrator.stop()
    }

    @Test("A permanent error goes to the dead-letter sink without retry")
    func permanentNoRetry() async throws {
        let attempts = Mutex(0)
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 5),
            processor: ClosureProcessor { _, _ in
                attempts.withLock { $0 += 1 }
                throw ProcessingError.permanent("template references a missing node")
            })
        _ = try await harness.orchestrator.executeCycle(Cycle(records: [Fixtures.record(offset: 0, subject: "a")]))
        #expect(attempts.withLock { $0 } == 1)
        #expect(harness.deadLetters.all.first?.attempts == 1)
        await harness.orchestrator.stop()
    }

    @Test("An attempt past its deadline is cancelled, counted as a timeout and retried")
    func timeouts() async throws {
        // Deadlines are on the real clock. On a starved machine (the logic tests in parallel on
        // 2 cores) even the fast event can reach one, so what is expected is counted from what
        // the processor saw rather than assumed: every attempt of the slow one is cancelled,
        // the fast one succeeds, and each attempt that did not finish is one timeout.
        struct Seen { var slowAttempts = 0, slowCancelled = 0, fastAttempts = 0 }
        let seen = Mutex(Seen())
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 2, eventTimeoutMs: 2000),
            environment: Fixtures.environment(clock: SystemClock(), random: 0),
            processor: ClosureProcessor { event, _ in
                guard event.subject == "slow" else {
                    seen.withLock { $0.fastAttempts += 1 }
                    return .none
                }
                seen.withLock { $0.slowAttempts += 1 }
                do { try await Task.sleep(for: .seconds(3600)) } catch {
                    seen.withLock { $0.slowCancelled += 1 }
                    throw error
                }
                return .none
            })
        let records = [Fixtures.record(offset: 0, subject: "slow"), Fixtures.record(offset: 1, subject: "fast")]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        let counts = seen.withLock { $0 }
        #expect(counts.slowAttempts == 2 && counts.slowCancelled == 2, "\(counts)")
        #expect(result.execution.tasksSucceeded == 1 && result.execution.deadLettered == 1)
        #expect(result.execution.timeouts == 2 + (counts.fastAttempts - 1), "\(counts)")
        let letter = try #require(harness.deadLetters.all.first)
        #expect(harness.deadLetters.all.count == 1 && letter.record.position == records[0].position && letter.attempts == 2)
        #expect(letter.reason.contains("timed out"))
        #expect(harness.orchestrator.stats().timeouts == result.execution.timeouts)
        await harness.orchestrator.stop()
    }

    @Test("After an attempt past its deadline the worker goes on in a task that is not cancelled: the retry, the rest of the key in order, then the next key")
    func workAfterDeadline() async throws {
        // An attempt runs in its worker's task, which the deadline cancels: what follows must
        // run in a new one. Every attempt here sleeps, which fails at once in a cancelled task.
        struct Attempt: Equatable { let offset: Int64, attempt: Int, cancelled: Bool }
        let seen = Mutex<[Attempt]>([])
        let harness = try await Harness(
            config: Fixtures.config(concurrency: 1, maxAttempts: 5, eventTimeoutMs: 2000),
            environment: Fixtures.environment(clock: SystemClock(), random: 0),
            processor: ClosureProcessor { _, context in
                let offset = context.position.offset
                let hang = offset == 0 && context.attempt == 1
                do { try await Task.sleep(for: hang ? .seconds(3600) : .milliseconds(1)) } catch {
                    seen.withLock { $0.append(Attempt(offset: offset, attempt: context.attempt, cancelled: true)) }
                    throw error
                }
                seen.withLock { $0.append(Attempt(offset: offset, attempt: context.attempt, cancelled: false)) }
                return .none
            })
        let records = (0...2).map { Fixtures.record(offset: $0, subject: "k") } + [Fixtures.record(offset: 3, subject: "other")]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        let attempts = seen.withLock { $0 }
        #expect(attempts.first == Attempt(offset: 0, attempt: 1, cancelled: true), "\(attempts)")
        // On a starved machine a short attempt can reach its deadline too: each one that did was retried.
        let finished = attempts.filter { !$0.cancelled }
        #expect(finished.map(\.offset) == [0, 1, 2, 3], "\(attempts)")
        #expect(result.execution.tasksSucceeded == 4 && result.execution.notDone == 0, "\(result.execution)")
        #expect(result.execution.timeouts == attempts.count { $0.cancelled }, "\(attempts)")
        #expect(result.partitions.first?.commitOffset == 4)
        await harness.orchestrator.stop()
    }

    @Test("Invalid input goes to the dead-letter sink with the reason, without reaching the processor")
    func invalidInput() async throws {
        let probe = ProcessorProbe()
        let harness = try await Harness(processor: ClosureProcessor { _, context in
            probe.enter(context)
            probe.leave()
            return .none
        })
        let records = [
            Fixtures.record(offset: 0, subject: "a"),
            Fixtures.record(offset: 1, subject: "b", value: Array("{not json".utf8)),
            Fixtures.record(offset: 2, subject: "c", value: Array(#"{"id":"x","change_type":"node_exploded","timestamp":"2025-10-10T12:00:00Z","subject":"c","source":"t"}"#.utf8)),
            Fixtures.record(offset: 3, subject: "a"),
        ]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        #expect(probe.seen.map(\.position.offset) == [0, 3])
        let reasons = harness.deadLetters.all.sorted { $0.record.position.offset < $1.record.position.offset }.map(\.reason)
        #expect(reasons.count == 2)
        #expect(reasons.first?.contains("not valid JSON") == true)
        #expect(reasons.last?.contains("change_type") == true && reasons.last?.contains("node_exploded") == true)
        #expect(result.execution.invalidInput == 2 && result.execution.tasksFailed == 0)
        #expect(result.partitions.first?.commitOffset == 4)
        await harness.orchestrator.stop()
    }

    @Test("When the dead letter cannot be stored the record is not done, nor are later records of its key")
    func deadLetterFailureBlocks() async throws {
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 1),
            processor: ClosureProcessor { event, context in
                if context.position.offset == 1 { throw ProcessingError.permanent("bad") }
                return .none
            })
        harness.deadLetters.failing = true
        let records = (0..<5).map { Fixtures.record(offset: Int64($0), subject: $0 == 3 ? "other" : "k") }
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        let progress = try #require(result.partitions.first)
        #expect(progress.doneOffsets == [0, 3])
        #expect(progress.commitOffset == 1 && progress.firstNotDone == 1)
        #expect(result.execution.notDone == 3 && result.execution.tasksFailed == 1)
        await harness.orchestrator.stop()
    }

    @Test("Dead letters failing cycle after cycle back off exponentially to the cap with a dead_letter_failing alert naming the error, and recover")
    func deadLetterOutageBacksOff() async throws {
        let clock = FastForwardClock()
        let harness = try await Harness(environment: Fixtures.environment(clock: clock))
        harness.deadLetters.failing = true
        let invalid = Fixtures.record(offset: 0, subject: "k", value: Array("not json".utf8))
        for _ in 0..<6 {
            let result = try await harness.orchestrator.executeCycle(Cycle(records: [invalid]))
            #expect(result.execution.notDone == 1 && result.partitions.first?.commitOffset == nil)
        }
        // Retry policy of the fixtures: 100 ms, doubling, at most 1 s.
        #expect(clock.sleeps == [100, 200, 400, 800, 1000, 1000].map { Duration.milliseconds($0) })
        let alerts = harness.telemetry.tagged(.performanceAlert, "reason", "dead_letter_failing")
        #expect(alerts.map { $0.data["consecutive_failures"] } == (1...6).map { JSONValue.int($0) })
        #expect(alerts.last?.data["records"] == .int(1) && alerts.last?.data["backoff_ms"] == .number(1000))
        #expect(alerts.last?.data["error"]?.stringValue?.contains("Unavailable") == true)

        harness.deadLetters.failing = false
        let recovered = try await harness.orchestrator.executeCycle(Cycle(records: [invalid]))
        #expect(recovered.execution.deadLettered == 1 && recovered.partitions.first?.commitOffset == 1)
        #expect(clock.sleeps.count == 6, "a cycle whose dead letters are stored waits for nothing")
        harness.deadLetters.failing = true
        _ = try await harness.orchestrator.executeCycle(Cycle(records: [invalid]))
        #expect(clock.sleeps.last == .milliseconds(100), "the backoff starts over after a success")
        await harness.orchestrator.stop()
    }

    @Test("A dead-letter sink that is unusable for good fails the cycle: nothing of it is returned to commit, and a critical alert says why")
    func unusableDeadLetterSinkStops() async throws {
        struct Fenced: DeadLetterSink {
            func deadLetter(_ letter: DeadLetter) async throws { throw SinkUnusable(reason: "producer fenced") }
        }
        let telemetry = RecordingTelemetry()
        let orchestrator = try RegenerationOrchestrator(
            config: Fixtures.config(), processor: ClosureProcessor { _, _ in .none }, telemetry: telemetry, deadLetters: Fenced(),
            environment: Fixtures.environment())
        try await orchestrator.start()
        let records = [Fixtures.record(offset: 0, subject: "a"), Fixtures.record(offset: 1, subject: "b", value: Array("{".utf8))]
        let error = await #expect(throws: OrchestrationError.self) { try await orchestrator.executeCycle(Cycle(records: records)) }
        #expect(error?.code == .deadLetterSinkUnusable && error?.reason == "producer fenced")
        let alert = telemetry.tagged(.performanceAlert, "reason", "dead_letter_unusable").first
        #expect(alert?.data["error"] == .string("producer fenced") && alert?.tags["severity"] == "critical")
        await orchestrator.stop()
    }
}
