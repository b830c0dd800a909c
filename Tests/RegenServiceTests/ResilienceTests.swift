import Foundation
import Orchestration
import RdKafka
import RegenService
import Testing

@Suite("Breaker and scale-out of regen run", .serialized, .timeLimit(.minutes(5)))
struct ResilienceTests {
    @Test("A processor failing every time opens the breaker: commits stop, an alert goes out; on recovery nothing is lost")
    func breakerOpensAndRecovers() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<1000)
        let outage = fixture.directory.appendingPathComponent("outage").path
        #expect(FileManager.default.createFile(atPath: outage, contents: nil))
        let config = try fixture.writeConfig(
            orchestrator: [
                "retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 5 }",
                "breaker: { windowSize: 10, minimumCalls: 10, failureRatio: 0.5, cooldownMs: 1000, maxCooldownMs: 2000 }",
            ],
            simulate: "failWhileFileExists: \(outage)")
        let run = try fixture.start(config: config)
        #expect(await run.waitForMetric("regen_breaker_state") { $0 == 2 }, "the breaker never opened")
        try await Task.sleep(for: .seconds(3))
        let stalled = try await fixture.commitProgress().reduce(Int64(0)) { $0 + max(0, $1.committed) }
        #expect(stalled <= 10, "committed past the failures: \(stalled)")
        #expect(fixture.ledger().isEmpty)
        let alerts = try await fixture.readAll("regen.alerts", quiet: .seconds(2))
        #expect(alerts.contains { String(decoding: $0.value ?? [], as: UTF8.self).contains("circuit_open") })

        try FileManager.default.removeItem(atPath: outage)
        #expect(try await fixture.waitUntilCommitted())
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)
        // Events that failed before the breaker opened are dead letters; all others were processed. By id.
        // (A dead-lettered record after the first not-done one of its partition is read again
        // and may then be processed too: commits cover done prefixes only.)
        let lettered = Set(try await fixture.readAll("regen.dlq").compactMap { try? ChangeEvent.decode($0.value).id })
        let processed = Set(fixture.ledger())
        #expect(processed.union(lettered) == fixture.goodIDs(0..<1000), "events neither processed nor dead-lettered")
        #expect(lettered.count <= 10, "more dead letters than attempts before the breaker opened: \(lettered.count)")
    }

    @Test("Two instances split the partitions; when one is killed the other takes over and nothing is lost")
    func twoInstancesThenOne() async throws {
        let fixture = try await ServiceFixture(partitions: 8)
        let config = try fixture.writeConfig(simulate: "work: sleep, sleepMs: 1")
        let a = try fixture.start(config: config, arguments: ["--set", "service.instance=a"], name: "a")
        let b = try fixture.start(config: config, arguments: ["--set", "service.instance=b"], name: "b")
        for run in [a, b] {
            #expect(await run.waitForMetric("regen_assigned_partitions") { $0 >= 1 }, "both instances should own partitions")
        }
        try await fixture.produce(0..<8000)
        #expect(await a.waitForCycle(), "both instances should work")
        #expect(await b.waitForCycle(), "both instances should work")
        b.signal(SIGKILL)
        _ = await b.waitForExit()
        #expect(try await fixture.waitUntilCommitted(within: .seconds(180)))
        a.signal(SIGTERM)
        #expect(await a.waitForExit() == 0)
        let ledger = fixture.ledger()
        #expect(Set(ledger) == fixture.goodIDs(0..<8000), "lost events")
        // The kill repeats at most what b had processed but not committed: its cycles in
        // flight and the one awaiting its commit (cycle.maxEvents is 1,000 by default).
        let bound = ServiceSettings().duplicatesBound(maxEvents: 1000)
        #expect(ledger.count - Set(ledger).count <= bound, "\(ledger.count - Set(ledger).count) events processed twice")
    }
}

@Suite("Telemetry outage", .timeLimit(.minutes(3)))
struct TelemetryOutageTests {
    @Test("With the telemetry broker unreachable, processing and commits go on; shutdown stays bounded; drops are counted")
    func telemetryBrokerDown() async throws {
        let fixture = try await ServiceFixture(partitions: 4)
        try await fixture.produce(0..<3000)
        let run = try fixture.start(
            config: fixture.writeConfig(),
            arguments: ["--set", "kafka.telemetryBootstrapServers=127.0.0.1:9"])
        #expect(try await fixture.waitUntilCommitted())
        #expect(Set(fixture.ledger()) == fixture.goodIDs(0..<3000))
        let stopped = ContinuousClock.now
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(40)) == 0)
        #expect(ContinuousClock.now - stopped < .seconds(30), "shutdown waited on the unreachable telemetry broker")
        let line = run.output.split(separator: "\n").last { $0.contains("dropped=") } ?? ""
        #expect(line.contains("published=0") && !line.contains("dropped=0"), "\(line)")
    }
}
