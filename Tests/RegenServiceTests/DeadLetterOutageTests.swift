import Foundation
import Orchestration
import RdKafka
import Testing

@Suite("Dead-letter topic outage", .timeLimit(.minutes(4)))
struct DeadLetterOutageTests {
    @Test("A dead-letter topic that cannot be written: records are read again after a growing backoff, a dead_letter_failing alert names the error; once writable every dead letter lands and all is committed")
    func deadLetterTopicUnwritable() async throws {
        let fixture = try await ServiceFixture(partitions: 4)
        // Telemetry goes to a cluster of its own, so only the dead-letter producer meets the outage.
        let telemetry = try await ServiceFixture(partitions: 1)
        try await fixture.produce(0..<400, malformedRatio: 0.05)
        // Every Produce request refused: TOPIC_AUTHORIZATION_FAILED, which no retry cures.
        try await fixture.cluster.injectErrors(Array(repeating: KafkaResponseCode(rawValue: 29), count: 100_000), for: .produce)
        // Backoffs of 3 s, then 6 s: longer than a failing cycle and its re-read take here
        // (about 2 s), so a missing backoff shows. One cycle in flight: the next cycle can
        // only be the same records read again, once the failing one has waited its backoff.
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["retry: { maxAttempts: 1, initialBackoffMs: 3000, maxBackoffMs: 6000 }"]),
            arguments: [
                "--set", "kafka.telemetryBootstrapServers=\(telemetry.cluster.bootstrapServers)", "--set", "service.cyclesInFlight=1",
            ])
        // The outage lasts until two cycles have failed for it (their alerts are on the topic).
        let outage = ContinuousClock.now
        let early = try await telemetry.readAll("regen.alerts", expecting: 2)
        let committedDuringOutage = try await fixture.commitProgress().reduce(Int64(0)) { $0 + max(0, $1.committed) }
        let processedDuringOutage = fixture.ledger().count
        try await fixture.cluster.clearErrors(for: .produce)
        let outageLasted = ContinuousClock.now - outage
        #expect(try await fixture.waitUntilCommitted())
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)

        // Nothing was committed past a record whose dead letter was missing: each partition's
        // first records include malformed ones (one in 20, 100 records per partition).
        #expect(committedDuringOutage < 400, "committed everything while dead letters failed")
        let alerts = try await telemetry.readAll("regen.alerts", quiet: .seconds(2)).compactMap {
            try? JSONDecoder().decode(TelemetryEvent.self, from: Data($0.value ?? []))
        }.filter { $0.tags["reason"] == "dead_letter_failing" }.sorted { $0.timestamp < $1.timestamp }
        #expect(early.count >= 2 && alerts.count >= 2, "the outage did not last two failing cycles")
        #expect(alerts.contains { $0.data["error"]?.stringValue?.lowercased().contains("authoriz") == true }, "\(alerts.map(\.data))")
        // Each failing cycle held the next back for its backoff, and the backoff grew.
        func failures(_ alert: TelemetryEvent) -> Double { alert.data["consecutive_failures"]?.numberValue ?? 0 }
        func backoffMs(_ alert: TelemetryEvent) -> Double { alert.data["backoff_ms"]?.numberValue ?? 0 }
        for (earlier, later) in zip(alerts, alerts.dropFirst()) where failures(later) == failures(earlier) + 1 {
            let gapMs = later.timestamp.timeIntervalSince(earlier.timestamp) * 1000
            #expect(gapMs >= backoffMs(earlier) - 20, "failing cycle \(failures(later)) came \(gapMs) ms after one that asked for \(backoffMs(earlier)) ms")
            #expect(backoffMs(later) > backoffMs(earlier) || backoffMs(later) == 6000)
        }
        print("dead-letter outage of \(outageLasted): \(alerts.count) failing cycles, \(processedDuringOutage) processings")
        // Each failing cycle processed the window once (380 good events at most), the one
        // running at the measurement included.
        #expect(processedDuringOutage <= 380 * (early.count + 1), "\(processedDuringOutage) processings in \(early.count) failing cycles")

        let letters = try await fixture.readAll("regen.dlq", expecting: 20)
        let malformed = 400 - fixture.goodIDs(0..<400, malformedRatio: 0.05).count
        #expect(letters.count >= malformed, "\(letters.count) dead letters of \(malformed) malformed records")
        #expect(Set(fixture.ledger()) == fixture.goodIDs(0..<400, malformedRatio: 0.05), "lost events")
    }

    @Test("A dead-letter producer that failed fatally stops regen with exit 1, commits nothing of the cycle, and a critical alert says why")
    func fatalDeadLetterProducer() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        let telemetry = try await ServiceFixture(partitions: 1)
        try await fixture.produce(0..<200, malformedRatio: 0.05)
        // Refused authorization for its producer id is fatal to the idempotent dead-letter
        // producer, the only producer on this cluster.
        try await fixture.cluster.injectErrors([KafkaResponseCode(rawValue: 31)], for: KafkaAPIKey(rawValue: 22))
        let run = try fixture.start(
            config: fixture.writeConfig(), arguments: ["--set", "kafka.telemetryBootstrapServers=\(telemetry.cluster.bootstrapServers)"])
        #expect(await run.waitForExit(within: .seconds(90)) == 1)
        let committed = try await fixture.commitProgress().reduce(Int64(0)) { $0 + max(0, $1.committed) }
        #expect(committed == 0, "committed \(committed) records of a cycle whose dead letters could not be stored")
        let alerts = try await telemetry.readAll("regen.alerts", quiet: .seconds(2)).compactMap {
            try? JSONDecoder().decode(TelemetryEvent.self, from: Data($0.value ?? []))
        }
        let unusable = alerts.first { $0.tags["reason"] == "dead_letter_unusable" }
        #expect(unusable?.tags["severity"] == "critical")
        #expect(unusable?.data["error"]?.stringValue?.contains("failed fatally") == true, "\(String(describing: unusable?.data))")
    }
}
