import Foundation
import Orchestration
import RdKafka
import Testing

/// What a fault scenario did to the events: the verifier reads the processor's ledger.
struct DeliveryReport: CustomStringConvertible {
    let scenario: String
    let sent: Int
    let processed: Int
    let lost: Int
    let duplicated: Int
    let restarts: Int

    init(scenario: String, expected: Set<String>, ledger: [String], restarts: Int) {
        let seen = Set(ledger)
        self.scenario = scenario
        sent = expected.count
        processed = seen.intersection(expected).count
        lost = expected.subtracting(seen).count
        duplicated = ledger.count - seen.count
        self.restarts = restarts
    }

    var description: String {
        "\(scenario): sent \(sent), processed \(processed), lost \(lost), duplicated \(duplicated) over \(restarts) restarts"
    }
}

/// The scale of the fault scenarios: short in `make test`, the figures with `REGEN_CHAOS=full`.
enum ChaosScale {
    static var isFull: Bool { ProcessInfo.processInfo.environment["REGEN_CHAOS"] == "full" }
    /// At about 2,000 events/s (2 ms sleeps, 4 at once) there is work left for every restart.
    static var events: Int { isFull ? 200_000 : 20_000 }
    static var restarts: Int { isFull ? 20 : 4 }
    /// The embedded broker keeps about 5 MB per partition: 200,000 events need 32.
    static var partitions: Int { isFull ? 32 : 8 }
    static let cycle = 500
}

@Suite("Fault scenarios: restarts under load", .serialized, .timeLimit(.minutes(30)))
struct ChaosTests {
    /// Runs `regen run`, stopping it with `signal` at random moments `restarts` times and
    /// starting it again, then lets the last one finish.
    func restartLoop(signal: Int32, name: String) async throws -> DeliveryReport {
        let fixture = try await ServiceFixture(partitions: ChaosScale.partitions)
        try await fixture.produce(0..<ChaosScale.events)
        let config = try fixture.writeConfig(
            orchestrator: [
                "cycle: { maxEvents: \(ChaosScale.cycle), maxWaitMs: 300 }", "concurrency: 4", "adaptiveOptimization: false",
            ],
            simulate: "work: sleep, sleepMs: 2")
        var generator = SystemRandomNumberGenerator()
        var restarts = 0
        for round in 0..<ChaosScale.restarts {
            let run = try fixture.start(config: config, name: "\(name)-\(round)")
            #expect(await run.waitFor("cycle completed", within: .seconds(90)), "round \(round) never completed a cycle")
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500, using: &generator)))
            run.signal(signal)
            #expect(await run.waitForExit(within: .seconds(90)) != nil, "round \(round) did not exit")
            restarts += 1
        }
        let last = try fixture.start(config: config, name: "\(name)-last")
        #expect(try await fixture.waitUntilCommitted(within: .seconds(ChaosScale.isFull ? 900 : 180)))
        last.signal(SIGTERM)
        let status = await last.waitForExit(within: .seconds(90))
        #expect(status == 0, "last instance: status \(String(describing: status)); log tail: \(last.output.suffix(1500))")
        let report = DeliveryReport(
            scenario: name, expected: fixture.goodIDs(0..<ChaosScale.events), ledger: fixture.ledger(), restarts: restarts)
        print(report)
        return report
    }

    @Test("Crash loop: SIGKILL at random moments, restart each time: nothing lost, duplicates within one cycle per crash")
    func crashLoop() async throws {
        let report = try await restartLoop(signal: SIGKILL, name: "crash loop")
        #expect(report.lost == 0)
        #expect(report.duplicated <= report.restarts * ChaosScale.cycle, "\(report)")
    }

    @Test("Graceful restarts: SIGTERM at random moments, restart each time: nothing lost, nothing processed twice")
    func gracefulRestarts() async throws {
        let report = try await restartLoop(signal: SIGTERM, name: "graceful restarts")
        #expect(report.lost == 0)
        #expect(report.duplicated == 0, "\(report)")
    }
}

@Suite("Fault scenarios: slow downstream", .timeLimit(.minutes(5)))
struct SlowDownstreamTests {
    @Test("Attempts hanging past their timeout in cycles longer than max.poll.interval.ms: no eviction, timeouts counted, nothing lost")
    func slowDownstream() async throws {
        let fixture = try await ServiceFixture(partitions: 4)
        try await fixture.produce(0..<2000)
        // Offsets 0 and 250 of each partition hang 20 s on their first attempt; the 8 s
        // timeout cancels them, so each cycle with one lasts over the 6 s poll interval.
        let config = try fixture.writeConfig(
            orchestrator: ["eventTimeoutMs: 8000", "concurrency: 8", "retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5 }"],
            simulate: "hangEvery: 250, hangMs: 20000")
        let run = try fixture.start(config: config, arguments: ["--set", "kafka.maxPollIntervalMs=6000"])
        #expect(try await fixture.waitUntilCommitted(within: .seconds(180)))
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
        let report = DeliveryReport(scenario: "slow downstream", expected: fixture.goodIDs(0..<2000), ledger: fixture.ledger(), restarts: 0)
        print(report)
        #expect(report.lost == 0 && report.duplicated == 0, "\(report)")
        let beforeShutdown = run.output.components(separatedBy: "cycle loop stopped")[0]
        #expect(beforeShutdown.components(separatedBy: "event=assigned").count - 1 == 1, "the member was rebalanced: it left the group")
        #expect(!beforeShutdown.contains("event=lost") && !beforeShutdown.contains("event=revoked"), "evicted for not polling")
        let telemetry = try await fixture.readAll("regen.telemetry").compactMap {
            try? JSONDecoder().decode(TelemetryEvent.self, from: Data($0.value ?? []))
        }
        let timeouts = telemetry.filter { $0.eventType == .regenerationCompleted && $0.tags["scope"] == "cycle" }
            .reduce(0) { $0 + Int($1.data["timeouts"]?.numberValue ?? 0) }
        #expect(timeouts == 8, "one timed-out first attempt per hanging offset (8), got \(timeouts)")
    }
}

@Suite("Fault scenarios: broker outage", .timeLimit(.minutes(5)))
struct BrokerOutageTests {
    @Test("The partition leaders' broker down mid-stream, then back: processing pauses and resumes, nothing lost")
    func leadersDown() async throws {
        let fixture = try await ServiceFixture(partitions: 8)
        for partition in 0..<8 {
            try await fixture.cluster.setLeader(TopicPartition(topic: fixture.input, partition: partition), broker: 1)
        }
        try await fixture.produce(0..<10_000)
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["cycle: { maxEvents: 500, maxWaitMs: 300 }"], simulate: "work: sleep, sleepMs: 2"))
        #expect(await run.waitFor("cycle completed", within: .seconds(60)))
        try await fixture.cluster.takeDown(broker: 1)
        let outage = ChaosScale.isFull ? Duration.seconds(10) : .seconds(5)
        try await Task.sleep(for: outage)
        try await fixture.cluster.bringUp(broker: 1)
        #expect(try await fixture.waitUntilCommitted(within: .seconds(180)))
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
        let report = DeliveryReport(scenario: "broker outage", expected: fixture.goodIDs(0..<10_000), ledger: fixture.ledger(), restarts: 0)
        print(report)
        #expect(report.lost == 0, "\(report)")
        // A member evicted during the outage re-reads at most the cycle it had not committed.
        let revocations = run.output.components(separatedBy: "cycle loop stopped")[0].components(separatedBy: "event=lost").count - 1
        #expect(report.duplicated <= 500 * max(1, revocations), "\(report)")
    }
}
