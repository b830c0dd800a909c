import Orchestration
import Synchronization
import Testing

@Suite("Parallel dispatch", .timeLimit(.minutes(3)))
struct DispatchTests {
    @Test("Parallelism reaches the limit and never exceeds it", arguments: [1, 3, 8])
    func parallelismBounded(limit: Int) async throws {
        let probe = ProcessorProbe()
        let harness = try await Harness(
            config: Fixtures.config(concurrency: limit),
            environment: Fixtures.environment(clock: SystemClock()),
            processor: ClosureProcessor { _, context in
                probe.enter(context)
                defer { probe.leave() }
                // The first wave waits (2 s at most) for the whole wave, so reaching the
                // limit does not depend on timing; going past it would still show.
                let end = ContinuousClock.now + .seconds(2)
                while probe.seen.count <= limit && probe.peak < limit && ContinuousClock.now < end {
                    try await Task.sleep(for: .milliseconds(1))
                }
                try await Task.sleep(for: .milliseconds(2))
                return .none
            })
        let result = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 120, keys: 40))
        #expect(probe.peak == limit)
        #expect(result.execution.parallelism == limit)
        #expect(result.execution.tasksSucceeded == 120)
        #expect(result.execution.saturated == (limit < 40))
        await harness.orchestrator.stop()
    }

    @Test("Cycles in flight at once share the concurrency limit: together they never exceed it")
    func limitSharedByCycles() async throws {
        let probe = ProcessorProbe()
        let harness = try await Harness(
            config: Fixtures.config(concurrency: 4),
            environment: Fixtures.environment(clock: SystemClock()),
            processor: ClosureProcessor { _, context in
                probe.enter(context)
                defer { probe.leave() }
                try await Task.sleep(for: .milliseconds(3))
                return .none
            })
        // Two cycles at once, of 40 key runs each (the second one reads another topic).
        let second = Cycle(records: Fixtures.cycle(count: 80, keys: 40).records.map { record in
            var record = record
            record.position.partition.topic = "other"
            return record
        })
        async let a = harness.orchestrator.executeCycle(Fixtures.cycle(count: 80, keys: 40))
        async let b = harness.orchestrator.executeCycle(second)
        let (first, other) = try await (a, b)
        #expect(first.execution.tasksSucceeded == 80 && other.execution.tasksSucceeded == 80)
        #expect(probe.peak == 4)
        await harness.orchestrator.stop()
    }

    @Test("Events of one key run one after another in offset order")
    func perKeyOrder() async throws {
        let probe = ProcessorProbe()
        let harness = try await Harness(
            config: Fixtures.config(concurrency: 8), environment: Fixtures.environment(clock: SystemClock()),
            processor: ClosureProcessor { _, context in
                probe.enter(context)
                defer { probe.leave() }
                if context.position.offset % 3 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                return .none
            })
        _ = try await harness.orchestrator.executeCycle(Fixtures.cycle(count: 1000, partitions: 4, keys: 20))
        let byKey = Dictionary(grouping: probe.seen, by: \.key)
        #expect(byKey.count == 20)
        for (key, contexts) in byKey {
            let offsets = contexts.map(\.position.offset)
            #expect(offsets == offsets.sorted(), "key \(key) ran out of order")
            #expect(Set(contexts.map(\.position.partition)).count == 1)
        }
        await harness.orchestrator.stop()
    }

    @Test("Higher priority keys go first, then earlier offsets")
    func priorityOrder() async throws {
        let probe = ProcessorProbe()
        let harness = try await Harness(
            config: Fixtures.config(concurrency: 1),
            processor: ClosureProcessor { _, context in
                probe.enter(context)
                probe.leave()
                return .none
            })
        let records = [
            Fixtures.record(offset: 0, subject: "a"), Fixtures.record(offset: 1, subject: "b", priority: 5),
            Fixtures.record(offset: 2, subject: "c", priority: 1), Fixtures.record(offset: 3, subject: "d", priority: 5),
            Fixtures.record(offset: 4, subject: "a", priority: 9),
        ]
        _ = try await harness.orchestrator.executeCycle(Cycle(records: records))
        // "a" carries priority 9 (its highest); its two events stay in offset order.
        #expect(probe.seen.map(\.key) == ["a", "a", "b", "d", "c"])
        #expect(probe.seen.map(\.position.offset) == [0, 4, 1, 3, 2])
        await harness.orchestrator.stop()
    }

    @Test("10,000 events in one cycle: all processed, every partition committable to its end")
    func tenThousandEvents() async throws {
        let count = Mutex(0)
        let harness = try await Harness(
            config: Fixtures.config(concurrency: 16),
            processor: ClosureProcessor { _, _ in
                count.withLock { $0 += 1 }
                return ProcessingReport(regenerations: 1, deployments: 1)
            })
        let cycle = Fixtures.cycle(count: 10_000, partitions: 8, keys: 1000)
        let result = try await harness.orchestrator.executeCycle(cycle)
        #expect(count.withLock { $0 } == 10_000)
        #expect(result.execution.tasksSucceeded == 10_000)
        #expect(result.partitions.count == 8)
        for progress in result.partitions {
            #expect(progress.commitOffset == 1250 && progress.firstNotDone == nil)
        }
        let stats = harness.orchestrator.stats()
        #expect(stats.eventsProcessed == 10_000 && stats.regenerationsTriggered == 10_000 && stats.deploymentsCompleted == 10_000)
        await harness.orchestrator.stop()
    }

    @Test("A record decoded ahead counts only under the orchestrator's own size limit; a new value is decoded again")
    func decodedAhead() async throws {
        let processed = Mutex<[String]>([])
        var config = Fixtures.config()
        config.maxEventBytes = 300
        let harness = try await Harness(
            config: config,
            processor: ClosureProcessor { event, _ in
                processed.withLock { $0.append(event.id) }
                return .none
            })
        var same = Fixtures.record(offset: 0, subject: "a")
        same.predecode(maxBytes: 300)
        // Decoded under a larger limit than this orchestrator's, and larger than its own.
        let padding = String(repeating: "x", count: 400)
        var large = Fixtures.record(
            offset: 1, subject: "b",
            value: Array(#"{"id":"large","change_type":"node_updated","subject":"b","properties":{"pad":"\#(padding)"}}"#.utf8))
        large.predecode(maxBytes: 1 << 20)
        var replaced = Fixtures.record(offset: 2, subject: "c")
        replaced.predecode(maxBytes: 300)
        replaced.value = Array("not json".utf8)
        let result = try await harness.orchestrator.executeCycle(Cycle(records: [same, large, replaced]))
        #expect(processed.withLock { $0 } == ["changes-0-0"])
        let letters = harness.deadLetters.all.sorted { $0.record.position.offset < $1.record.position.offset }
        #expect(letters.map(\.record.position.offset) == [1, 2])
        #expect(letters.first?.reason.contains("exceeds the limit of 300") == true)
        #expect(letters.last?.invalidInput == true && letters.last?.reason.contains("exceeds") == false)
        #expect(result.partitions.first?.commitOffset == 3)
        await harness.orchestrator.stop()
    }

    @Test("Partitions interleaved in a cycle: each one's done prefix and first record to read again")
    func interleavedPartitions() async throws {
        let harness = try await Harness(
            config: Fixtures.config(maxAttempts: 1),
            processor: ClosureProcessor { event, _ in
                if event.subject == "fails" { throw ProcessingError.permanent("refused") }
                return .none
            })
        harness.deadLetters.failing = true
        let records = [
            Fixtures.record(partition: 1, offset: 7, subject: "a"), Fixtures.record(partition: 0, offset: 3, subject: "b"),
            Fixtures.record(partition: 1, offset: 8, subject: "fails"), Fixtures.record(partition: 0, offset: 4, subject: "c"),
            Fixtures.record(partition: 1, offset: 9, subject: "d"), Fixtures.record(partition: 2, offset: 0, subject: "fails"),
        ]
        let result = try await harness.orchestrator.executeCycle(Cycle(records: records))
        let progress = Dictionary(uniqueKeysWithValues: result.partitions.map { ($0.partition.partition, $0) })
        #expect(result.partitions.map(\.partition.partition) == [0, 1, 2])
        #expect(progress[0]?.doneOffsets == [3, 4] && progress[0]?.commitOffset == 5 && progress[0]?.firstNotDone == nil)
        #expect(progress[1]?.doneOffsets == [7, 9] && progress[1]?.commitOffset == 8 && progress[1]?.firstNotDone == 8)
        #expect(progress[2]?.doneOffsets == [] && progress[2]?.commitOffset == nil && progress[2]?.firstNotDone == 0)
        await harness.orchestrator.stop()
    }
}
