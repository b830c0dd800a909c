import Foundation
import Orchestration
import RdKafka
import RegenService
import Testing

/// `regen run` as a real process against the embedded cluster: what it processes, commits
/// and publishes, and what survives kills and shutdowns.
@Suite("Delivery guarantees of regen run", .serialized, .timeLimit(.minutes(5)))
struct DeliveryTests {
    @Test("50,000 events: all processed, offsets committed to the end, one regeneration_completed per cycle")
    func fiftyThousand() async throws {
        let fixture = try await ServiceFixture()
        try await fixture.produce(0..<50_000)
        let run = try fixture.start(config: fixture.writeConfig())
        let committed = try await fixture.waitUntilCommitted()
        let progress = try await fixture.commitProgress()
        #expect(committed, "committed: \(progress)")
        let cyclesRun = await run.metric("regen_cycles_total")
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)
        let ledger = fixture.ledger()
        #expect(Set(ledger) == fixture.goodIDs(0..<50_000))
        #expect(ledger.count == 50_000, "a single uninterrupted run processes each event once")

        let telemetry = try await fixture.readAll("regen.telemetry").compactMap {
            try? JSONDecoder().decode(TelemetryEvent.self, from: Data($0.value ?? []))
        }
        let cycles = telemetry.filter { $0.eventType == .regenerationCompleted && $0.tags["scope"] == "cycle" }
        #expect(Set(cycles.compactMap { $0.data["execution_id"]?.stringValue }).count == cycles.count)
        #expect(cycles.reduce(0) { $0 + Int($1.data["tasks_executed"]?.numberValue ?? 0) } == 50_000)
        #expect(Double(cycles.count) == cyclesRun, "a cycle's telemetry is missing or extra")
        #expect(telemetry.contains { $0.eventType == .regenerationStarted })
    }

    @Test("SIGKILL in the middle of a cycle, then a restart: nothing lost, duplicates within the cycles in flight and awaiting commit")
    func killAndRestart() async throws {
        let fixture = try await ServiceFixture()
        try await fixture.produce(0..<6000)
        let config = try fixture.writeConfig(
            orchestrator: ["cycle: { maxEvents: 200, maxWaitMs: 200 }"], simulate: "work: sleep, sleepMs: 2")
        let first = try fixture.start(config: config)
        #expect(await first.waitForCycle())
        // Mid-stream: killed once a sixth of the events has been processed, whatever the machine's speed.
        let end = ContinuousClock.now + .seconds(60)
        while fixture.ledger().count < 1000 && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
        first.signal(SIGKILL)
        _ = await first.waitForExit()
        let beforeRestart = fixture.ledger().count
        #expect(beforeRestart >= 1000 && beforeRestart < 6000, "the kill did not land mid-stream (\(beforeRestart))")
        // Work processed but not committed at the kill: what the restart must redo, the scenario's point.
        let committedAtKill = try await fixture.commitProgress().reduce(Int64(0)) { $0 + max(0, $1.committed) }
        #expect(Int(committedAtKill) < beforeRestart, "everything processed was committed: no cycle was cut short")

        let second = try fixture.start(config: config)
        #expect(try await fixture.waitUntilCommitted())
        second.signal(SIGTERM)
        #expect(await second.waitForExit() == 0)
        let ledger = fixture.ledger()
        #expect(Set(ledger) == fixture.goodIDs(0..<6000), "lost events")
        #expect(ledger.count - Set(ledger).count <= ServiceSettings().duplicatesBound(maxEvents: 200), "more duplicates than the engine's bound")
    }

    @Test("SIGTERM during a cycle: it completes and is committed; a restart processes nothing twice")
    func gracefulRestart() async throws {
        let fixture = try await ServiceFixture()
        try await fixture.produce(0..<4000)
        let config = try fixture.writeConfig(simulate: "work: sleep, sleepMs: 3")
        let first = try fixture.start(config: config)
        #expect(await first.waitForCycle())
        first.signal(SIGTERM)
        #expect(await first.waitForExit() == 0)
        let committed = try await fixture.commitProgress().reduce(Int64(0)) { $0 + max(0, $1.committed) }
        #expect(committed > 0 && Int(committed) == fixture.ledger().count, "processed events and committed offsets differ")

        let second = try fixture.start(config: config)
        #expect(try await fixture.waitUntilCommitted())
        second.signal(SIGTERM)
        #expect(await second.waitForExit() == 0)
        let ledger = fixture.ledger()
        #expect(ledger.count == 4000 && Set(ledger).count == 4000, "graceful restart duplicated or lost events")
    }

    @Test("Malformed, mistyped, unknown and oversize records go to the DLQ with the reason; good ones are processed")
    func badInputToDeadLetters() async throws {
        let fixture = try await ServiceFixture(partitions: 4)
        try await fixture.produce(0..<2000, malformedRatio: 0.1)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: fixture.cluster.connection()), logger: fixture.logger)
        let huge = #"{"id":"huge","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","source":"t","properties":{"blob":""# + String(repeating: "x", count: 300_000) + #""}}"#
        let hugeAt = try await producer.send(
            topic: fixture.input, key: Array("s".utf8), value: Array(huge.utf8), headers: [KafkaHeader(key: "x-origin", string: "upstream-7")])
        try await producer.send(topic: fixture.input, key: nil, value: nil)
        try await producer.close()

        let run = try fixture.start(config: fixture.writeConfig(orchestrator: ["maxEventBytes: 100000"]))
        #expect(try await fixture.waitUntilCommitted())
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)
        #expect(Set(fixture.ledger()) == fixture.goodIDs(0..<2000, malformedRatio: 0.1))
        let letters = try await fixture.readAll("regen.dlq", expecting: 202)
        #expect(letters.count == 202)
        let reasons = letters.compactMap { $0.header("regen.error")?.value.map { String(decoding: $0, as: UTF8.self) } }
        #expect(reasons.count == 202)
        #expect(reasons.contains { $0.contains("not valid JSON") })
        #expect(reasons.contains { $0.contains("change_type") && $0.contains("node_exploded") })
        #expect(reasons.contains { $0.contains("field 'timestamp': missing") })
        #expect(reasons.contains { $0.contains("field 'id': expected a string") })
        #expect(reasons.contains { $0.contains("exceeds the limit of 100000") })
        #expect(reasons.contains { $0.contains("empty record") })
        #expect(letters.allSatisfy { $0.header("regen.source.offset") != nil && $0.header("regen.attempts") != nil })
        // A dead letter is the original record (key, value, headers) plus where from and why.
        let text = { (letter: KafkaMessage, key: String) in letter.header(key)?.value.map { String(decoding: $0, as: UTF8.self) } }
        let hugeLetter = try #require(letters.first { text($0, "regen.error")?.contains("exceeds the limit") == true })
        #expect(hugeLetter.key == Array("s".utf8) && hugeLetter.value == Array(huge.utf8))
        #expect(text(hugeLetter, "x-origin") == "upstream-7")
        #expect(text(hugeLetter, "regen.invalid") == "true" && text(hugeLetter, "regen.attempts") == "0")
        #expect(text(hugeLetter, "regen.source.topic") == fixture.input)
        #expect(text(hugeLetter, "regen.source.partition") == String(hugeAt.partition))
        #expect(text(hugeLetter, "regen.source.offset") == String(hugeAt.offset))
    }
}
