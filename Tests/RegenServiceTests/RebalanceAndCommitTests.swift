import Foundation
import Orchestration
import RdKafka
import Testing

@Suite("Commits and rebalances of regen run", .serialized, .timeLimit(.minutes(5)))
struct RebalanceAndCommitTests {
    @Test(
        "A second instance joining mid-stream: revoked partitions' done work is committed first; nothing lost",
        arguments: ["cooperative-sticky", "range"])
    func joinMidStream(strategy: String) async throws {
        let fixture = try await ServiceFixture(partitions: 8)
        try await fixture.produce(0..<6000)
        let config = try fixture.writeConfig(
            orchestrator: ["cycle: { maxEvents: 300, maxWaitMs: 300 }"], simulate: "work: sleep, sleepMs: 2")
        let strategyFlag = ["--set", "kafka.assignmentStrategy=\(strategy)"]
        let a = try fixture.start(config: config, arguments: strategyFlag, name: "a")
        #expect(await a.waitFor("cycle completed"))
        let b = try fixture.start(config: config, arguments: strategyFlag, name: "b")
        #expect(await a.waitFor("event=revoked"), "the first instance never gave up a partition")
        #expect(await b.waitFor("cycle completed"))
        #expect(try await fixture.waitUntilCommitted(within: .seconds(180)))
        a.signal(SIGTERM)
        b.signal(SIGTERM)
        #expect(await a.waitForExit() == 0)
        #expect(await b.waitForExit() == 0)
        let ledger = fixture.ledger()
        #expect(Set(ledger) == fixture.goodIDs(0..<6000), "lost events")
        // Each revocation may repeat at most one cycle: the one whose revoke-time commit the
        // embedded broker refuses (it refuses commits while the group rebalances; Apache Kafka
        // accepts them). No new cycle starts while a commit is pending. Eager assignment can
        // rebalance twice while a member joins.
        let beforeShutdown = [a.output, b.output].map { $0.components(separatedBy: "cycle loop stopped")[0] }.joined()
        let revocations = beforeShutdown.components(separatedBy: "event=revoked").count - 1
        let duplicates = ledger.count - Set(ledger).count
        #expect(duplicates <= 300 * max(1, revocations), "\(duplicates) duplicates for \(revocations) revocations")
    }

    @Test("OffsetCommit failures from the broker are retried: offsets still reach the end, nothing lost")
    func commitFailuresRetried() async throws {
        let fixture = try await ServiceFixture(partitions: 4)
        try await fixture.produce(0..<3000)
        let config = try fixture.writeConfig(orchestrator: ["cycle: { maxEvents: 500, maxWaitMs: 300 }"])
        try await fixture.cluster.injectErrors(
            [.requestTimedOut, .coordinatorLoadInProgress, .requestTimedOut, .coordinatorNotAvailable, .requestTimedOut],
            for: .offsetCommit)
        let run = try fixture.start(config: config)
        #expect(try await fixture.waitUntilCommitted())
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)
        #expect(Set(fixture.ledger()) == fixture.goodIDs(0..<3000))
    }
}
