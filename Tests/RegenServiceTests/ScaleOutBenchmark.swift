import Foundation
import Orchestration
import RdKafka
import Testing

/// The scale-out figure of RELIABILITY.md: a benchmark, run by `make chaos` only. It reports
/// throughput against the single instance measured in the same run and asserts only
/// behaviour (every instance works, survivors take over a stopped member's partitions,
/// every event processed is one that was produced), never speed.
@Suite("Scale-out benchmark", .serialized, .enabled(if: ChaosScale.isFull), .timeLimit(.minutes(30)))
struct ScaleOutBenchmark {
    static let partitions = 32
    static let events = 200_000
    static let window = Duration.seconds(20)

    struct Measurement: CustomStringConvertible {
        var instances: Int
        var eventsPerSecond: Double
        var killTakeover: Duration?
        var stopTakeover: Duration?

        var description: String {
            let kill = killTakeover.map { "after SIGKILL \(Self.seconds($0))" } ?? ""
            let stop = stopTakeover.map { ", after SIGTERM \(Self.seconds($0))" } ?? ""
            return "\(instances) instance(s): \(Int(eventsPerSecond)) events/s" + (kill.isEmpty ? "" : "; takeover \(kill)\(stop)")
        }

        static func seconds(_ duration: Duration) -> String {
            String(format: "%.1f s", duration.seconds)
        }
    }

    @Test("1, 2 and 3 instances over 32 partitions with a 5 ms processor: throughput, and the time to take over a stopped member's partitions")
    func scaleOut() async throws {
        let fixture = try await ServiceFixture(partitions: Self.partitions)
        try await fixture.produce(0..<Self.events)
        var results: [Measurement] = []
        for count in 1...3 {
            results.append(try await measure(instances: count, fixture: fixture))
            print("scale-out:", results.last!)
        }
        let baseline = results[0].eventsPerSecond
        for result in results {
            print(String(format: "scale-out: %d instance(s) %.0f events/s, %.2fx one instance", result.instances, result.eventsPerSecond, result.eventsPerSecond / baseline))
        }
    }

    /// Runs `count` instances in a group of their own (each group reads the topic from the
    /// start), measures their steady throughput over `window`, then stops members and times
    /// how long until every partition's committed offset moves again.
    func measure(instances count: Int, fixture: ServiceFixture) async throws -> Measurement {
        let group = "scale-\(count)-\(UUID().uuidString.prefix(4))"
        let ledger = fixture.directory.appendingPathComponent("\(group).ledger").path
        let config = try fixture.writeConfig(
            orchestrator: ["cycle: { maxEvents: 500, maxWaitMs: 300 }", "concurrency: 4", "adaptiveOptimization: false"],
            simulate: "work: sleep, sleepMs: 5", name: "\(group).yaml", group: group, ledger: ledger)
        let runs = try (0..<count).map {
            try fixture.start(config: config, arguments: ["--set", "service.instance=\(group)-\($0)"], name: "\(group)-\($0)")
        }
        for run in runs { #expect(await run.waitForCycle(within: .seconds(90)), "an instance never got work") }
        try await Task.sleep(for: .seconds(3))  // past the first rebalances

        let before = fixture.ledger(at: ledger).count
        let start = ContinuousClock.now
        try await Task.sleep(for: Self.window)
        let processed = fixture.ledger(at: ledger).count - before
        let elapsed = ContinuousClock.now - start
        var result = Measurement(instances: count, eventsPerSecond: Double(processed) / elapsed.seconds)

        if count >= 2 {
            result.killTakeover = try await takeover(after: runs[count - 1], signal: SIGKILL, fixture: fixture, group: group)
        }
        if count == 3 {
            result.stopTakeover = try await takeover(after: runs[1], signal: SIGTERM, fixture: fixture, group: group)
        }
        for run in runs where run.isRunning {
            run.signal(SIGTERM)
            #expect(await run.waitForExit() == 0)
        }
        let seen = fixture.ledger(at: ledger)
        #expect(seen.count > 0 && Set(seen).isSubset(of: fixture.goodIDs(0..<Self.events)))
        return result
    }

    /// Stops `run` with `signal` and waits until the committed offset of every partition has
    /// moved past where it was: the survivors have taken over the stopped member's share.
    func takeover(after run: RegenProcess, signal: Int32, fixture: ServiceFixture, group: String) async throws -> Duration? {
        let committed = try await fixture.commitProgress(group: group).map(\.committed)
        let stopped = ContinuousClock.now
        run.signal(signal)
        let deadline = stopped + .seconds(120)
        while ContinuousClock.now < deadline {
            let now = try await fixture.commitProgress(group: group)
            if zip(now, committed).allSatisfy({ $0.committed > $1 || $0.committed == $0.end }) { return ContinuousClock.now - stopped }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("partitions of a stopped member were not taken over within 120 s")
        return nil
    }
}
