import Foundation
import Orchestration
import RdKafka
import RegenService
import Testing

/// What a fault scenario did to the events: the verifier reads the processor's ledger.
struct ScenarioReport: CustomStringConvertible {
    let scenario: String
    let sent: Int
    let processed: Int
    let lost: Int
    let duplicated: Int
    let restarts: Int
    /// The most events one stopped run had processed but not committed (to be processed again).
    var maxExposedPerRestart: Int?

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
            + (maxExposedPerRestart.map { " (at most \($0) processed but uncommitted by one stopped run)" } ?? "")
    }
}

/// The scale of the fault scenarios: short in `make test`, the issue's figures with `REGEN_CHAOS=full`.
enum ChaosScale {
    static var isFull: Bool { ProcessInfo.processInfo.environment["REGEN_CHAOS"] == "full" }
    /// At about 2,000 events/s (2 ms sleeps, 4 at once) there is work left for every restart.
    static var events: Int { isFull ? 200_000 : 20_000 }
    static var restarts: Int { isFull ? 20 : 4 }
    /// The embedded broker keeps about 5 MB per partition: 200,000 events need 32.
    static var partitions: Int { isFull ? 32 : 8 }
    static let cycle = 500
    /// What one crash (or one revocation whose commit is refused) may process again at
    /// default settings: the cycles in flight and those awaiting their commit.
    static let exposure = ServiceSettings().duplicatesBound(maxEvents: cycle)
}

@Suite("Fault scenarios: restarts under load", .serialized, .timeLimit(.minutes(30)))
struct ChaosTests {
    /// Runs `regen run`, stopping it with `signal` at random moments `restarts` times and
    /// starting it again, then lets the last one finish.
    func restartLoop(signal: Int32, name: String) async throws -> ScenarioReport {
        let fixture = try await ServiceFixture(partitions: ChaosScale.partitions)
        let positions = try await fixture.produceTracked(0..<ChaosScale.events)
        let config = try fixture.writeConfig(
            orchestrator: [
                "cycle: { maxEvents: \(ChaosScale.cycle), maxWaitMs: 300 }", "concurrency: 4", "adaptiveOptimization: false",
            ],
            simulate: "work: sleep, sleepMs: 2")
        var generator = SystemRandomNumberGenerator()
        var restarts = 0
        var exposed: [Int] = []
        var linesBefore = 0
        for round in 0..<ChaosScale.restarts {
            let run = try fixture.start(config: config, name: "\(name)-\(round)")
            #expect(await run.waitForCycle(within: .seconds(90)), "round \(round) never completed a cycle")
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...1500, using: &generator)))
            run.signal(signal)
            let status = await run.waitForExit(within: .seconds(90))
            #expect(status != nil, "round \(round) did not exit")
            if signal == SIGTERM { #expect(status == 0, "round \(round): status \(String(describing: status))") }
            // What this run processed but did not commit is what the next run reads again.
            // (Work an earlier crash left and this run never reached is that crash's share.)
            let committed = ServiceFixture.committedIDs(try await fixture.commitProgress(), positions: positions)
            let lines = fixture.ledger()
            exposed.append(Set(lines[min(linesBefore, lines.count)...]).subtracting(committed).count)
            linesBefore = lines.count
            restarts += 1
        }
        let last = try fixture.start(config: config, name: "\(name)-last")
        #expect(try await fixture.waitUntilCommitted(within: .seconds(ChaosScale.isFull ? 900 : 180)))
        last.signal(SIGTERM)
        let status = await last.waitForExit(within: .seconds(90))
        #expect(status == 0, "last instance: status \(String(describing: status)); log tail: \(last.output.suffix(1500))")
        var report = ScenarioReport(
            scenario: name, expected: fixture.goodIDs(0..<ChaosScale.events), ledger: fixture.ledger(), restarts: restarts)
        report.maxExposedPerRestart = exposed.max()
        print(report)
        return report
    }

    @Test("Crash loop: SIGKILL at random moments, restart each time: nothing lost, duplicates within the cycles in flight and awaiting commit per crash")
    func crashLoop() async throws {
        let report = try await restartLoop(signal: SIGKILL, name: "crash loop")
        #expect(report.lost == 0)
        #expect(report.duplicated <= report.restarts * ChaosScale.exposure, "\(report)")
        #expect((report.maxExposedPerRestart ?? 0) <= ChaosScale.exposure, "\(report)")
    }

    @Test("Graceful restarts: SIGTERM at random moments, restart each time: nothing lost, nothing processed twice")
    func gracefulRestarts() async throws {
        let report = try await restartLoop(signal: SIGTERM, name: "graceful restarts")
        #expect(report.lost == 0)
        #expect(report.duplicated == 0, "\(report)")
        #expect(report.maxExposedPerRestart == 0, "a stop left processed work uncommitted: \(report)")
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
        var rebalances: [String: Double] = [:]
        for kind in ["assigned", "revoked", "lost"] { rebalances[kind] = await run.metric("regen_rebalances_total", ["kind": kind]) }
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
        let report = ScenarioReport(scenario: "slow downstream", expected: fixture.goodIDs(0..<2000), ledger: fixture.ledger(), restarts: 0)
        print(report)
        #expect(report.lost == 0 && report.duplicated == 0, "\(report)")
        #expect(rebalances["assigned"] == 1, "the member was rebalanced: it left the group")
        #expect(rebalances["lost"] == 0 && rebalances["revoked"] == 0, "evicted for not polling")
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
        // A small prefetch, so the outage finds records still to fetch (80,000 would hold the whole topic).
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["cycle: { maxEvents: 500, maxWaitMs: 300 }"], simulate: "work: sleep, sleepMs: 2"),
            arguments: ["--set", "kafka.properties.queued.min.messages=500"])
        #expect(await run.waitForCycle())
        try await fixture.cluster.takeDown(broker: 1)
        // The outage lasts until processing has visibly stopped (what was fetched is done)
        // and then a while longer; the mock broker does not move leadership.
        let quiet = ChaosScale.isFull ? Duration.seconds(8) : .seconds(3)
        let stalled = try await fixture.waitUntilLedgerStalls(for: quiet, within: .seconds(60))
        let doneInOutage = Set(fixture.ledger()).count
        try await fixture.cluster.bringUp(broker: 1)
        #expect(stalled, "processing never stopped while the leaders' broker was down: the scenario did not happen")
        #expect(doneInOutage < 10_000, "everything was processed before the outage bit: the scenario did not happen")
        #expect(try await fixture.waitUntilCommitted(within: .seconds(180)))
        let revocations = Int(await run.metric("regen_rebalances_total", ["kind": "lost"]) ?? 0)
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
        let report = ScenarioReport(scenario: "broker outage", expected: fixture.goodIDs(0..<10_000), ledger: fixture.ledger(), restarts: 0)
        // A member evicted during the outage re-reads at most the work it had not committed.
        print(report, "; partitions lost: \(revocations)")
        #expect(report.lost == 0, "\(report)")
        #expect(report.duplicated <= ServiceSettings().duplicatesBound(maxEvents: 500) * max(1, revocations), "\(report)")
    }
}

@Suite("Fault scenarios: commit outage", .timeLimit(.minutes(5)))
struct CommitOutageTests {
    @Test("OffsetCommit refused for a stretch mid-stream: no commit ever ahead of the work done, uncommitted work bounded, nothing lost")
    func commitsRefused() async throws {
        let fixture = try await ServiceFixture(partitions: 8)
        let events = ChaosScale.isFull ? 40_000 : 10_000
        let positions = try await fixture.produceTracked(0..<events)
        let cycle = 500
        let run = try fixture.start(
            config: fixture.writeConfig(
                orchestrator: ["cycle: { maxEvents: \(cycle), maxWaitMs: 300 }", "concurrency: 4"], simulate: "work: sleep, sleepMs: 2"))
        #expect(await run.waitForCycle())
        let refusals = ChaosScale.isFull ? 200 : 40
        try await fixture.cluster.injectErrors(
            (0..<refusals).map { $0 % 2 == 0 ? KafkaResponseCode.requestTimedOut : .coordinatorNotAvailable }, for: .offsetCommit)

        // Sample while it runs: committed offsets against the ledger.
        var (aheadOfWork, mostUncommitted, samples) = ([String](), 0, 0)
        let deadline = ContinuousClock.now + .seconds(180)
        var finished = false
        while !finished && ContinuousClock.now < deadline {
            let before = Set(fixture.ledger())
            let progress = try await fixture.commitProgress()
            let after = Set(fixture.ledger())
            let committedIDs = ServiceFixture.committedIDs(progress, positions: positions)
            aheadOfWork += committedIDs.subtracting(after).map { "\($0) committed but not done" }
            mostUncommitted = max(mostUncommitted, before.subtracting(committedIDs).count)
            samples += 1
            finished = progress.allSatisfy { $0.committed == $0.end }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(finished, "offsets never reached the end")
        let failures = Int(await run.metric("regen_commits_total", ["result": "failed"]) ?? 0)
        var givenUp = 0
        for kind in ["lost", "revoked"] { givenUp += Int(await run.metric("regen_rebalances_total", ["kind": kind]) ?? 0) }
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)
        let report = ScenarioReport(scenario: "commit outage", expected: fixture.goodIDs(0..<events), ledger: fixture.ledger(), restarts: 0)
        print(report, "; \(failures) commits refused, \(givenUp) partition sets revoked or lost, \(samples) samples, at most \(mostUncommitted) events processed but not committed")
        #expect(failures > 0, "no commit was refused: the scenario did not happen")
        #expect(aheadOfWork.isEmpty, "offsets committed past work not done: \(aheadOfWork.prefix(5))")
        // The cycle in flight and the one awaiting its commit; no further cycle starts until a
        // commit lands. Should the member lose its partitions meanwhile (a session timeout on
        // a loaded machine), their pending commit is dropped: that work is read again, once.
        let bound = ServiceSettings().duplicatesBound(maxEvents: cycle)
        #expect(mostUncommitted <= bound * (givenUp == 0 ? 1 : 2), "\(mostUncommitted) events processed but not committed")
        #expect(report.lost == 0, "\(report)")
        #expect(report.duplicated <= bound * givenUp, "\(report)")
    }
}

@Suite("Fault scenarios: rebalance storm", .timeLimit(.minutes(20)))
struct RebalanceStormTests {
    @Test("Three instances in one group, one started, stopped or killed every few seconds: nothing lost, every duplicate accounted for by work measured uncommitted at a kill or stop or reported given up at a revocation or loss")
    func rebalanceStorm() async throws {
        let partitions = ChaosScale.isFull ? 32 : 16
        let events = ChaosScale.isFull ? 200_000 : 40_000
        let storm = ChaosScale.isFull ? Duration.seconds(60) : .seconds(25)
        let fixture = try await ServiceFixture(partitions: partitions)
        let positions = try await fixture.produceTracked(0..<events)
        let config = try fixture.writeConfig(
            orchestrator: ["cycle: { maxEvents: \(ChaosScale.cycle), maxWaitMs: 300 }", "concurrency: 4", "adaptiveOptimization: false"],
            simulate: "work: sleep, sleepMs: 5")
        var instances: [RegenProcess?] = [nil, nil, nil]
        var all: [RegenProcess] = []
        // Each run keeps a ledger of its own, so what one run processed can be told apart.
        var ledgers: [ObjectIdentifier: String] = [:]
        func start(_ slot: Int) throws {
            let ledger = fixture.directory.appendingPathComponent("ledger-storm-\(all.count)").path
            let run = try fixture.start(
                config: config, arguments: ["--set", "service.instance=storm-\(slot)", "--set", "processor.simulate.ledger=\(ledger)"],
                name: "storm-\(slot)-\(all.count)")
            instances[slot] = run
            ledgers[ObjectIdentifier(run)] = ledger
            all.append(run)
        }
        // What a run processed that the group had not committed once it was gone: what its
        // partitions' next readers may do again. Measured right after it exits.
        var exposedAtExit: [Int] = []
        func measureExposure(of instance: RegenProcess) async throws {
            let committed = ServiceFixture.committedIDs(try await fixture.commitProgress(), positions: positions)
            exposedAtExit.append(Set(fixture.ledger(at: ledgers[ObjectIdentifier(instance)])).subtracting(committed).count)
        }
        for slot in instances.indices { try start(slot) }

        var generator = SystemRandomNumberGenerator()
        var (kills, stops, badExits) = (0, 0, [String]())
        // Each instance's revocations, losses, refused commits and records given up
        // uncommitted, from its /metrics: scraped every round and right before the storm
        // kills or stops it (a dead process cannot be asked), the last answer kept.
        var seen: [ObjectIdentifier: (revoked: Int, lost: Int, refused: Int, givenUp: Int)] = [:]
        func scrape(_ instance: RegenProcess) async {
            guard instance.isRunning, let port = instance.httpPort, let answer = try? await get(port, "/metrics"), answer.status == 200
            else { return }
            // A counter appears with its first increment: absent from an answer means 0.
            let samples = PrometheusText(answer.text)
            let count = { (name: String, labels: [String: String]) in Int(samples[name, labels] ?? 0) }
            let last = seen[ObjectIdentifier(instance)] ?? (0, 0, 0, 0)
            seen[ObjectIdentifier(instance)] = (
                max(last.revoked, count("regen_rebalances_total", ["kind": "revoked"])),
                max(last.lost, count("regen_rebalances_total", ["kind": "lost"])),
                max(last.refused, count("regen_commits_total", ["result": "failed"])),
                max(last.givenUp, count("regen_given_up_uncommitted_records_total", [:])))
        }
        // Every exit the storm did not cause (a crash, an abort) fails the scenario.
        var unexpectedExits: [String] = []
        func noteUnexpectedExit(_ instance: RegenProcess?) async {
            guard let instance else { return }
            let status = await instance.waitForExit(within: .zero)
            unexpectedExits.append("exited on its own with status \(String(describing: status)): \(instance.output.suffix(800))")
        }
        let end = ContinuousClock.now + storm
        while ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(Int.random(in: 1500...4000, using: &generator)))
            for instance in instances.compactMap({ $0 }) { await scrape(instance) }
            let slot = Int.random(in: 0..<instances.count, using: &generator)
            guard let instance = instances[slot], instance.isRunning else {
                await noteUnexpectedExit(instances[slot])
                try start(slot)
                continue
            }
            await scrape(instance)
            if Bool.random(using: &generator) {
                instance.signal(SIGKILL)
                _ = await instance.waitForExit()
                try await measureExposure(of: instance)
                kills += 1
            } else {
                instance.signal(SIGTERM)
                let status = await instance.waitForExit(within: .seconds(60))
                try await measureExposure(of: instance)
                if status != 0 { badExits.append("status \(String(describing: status)): \(instance.output.suffix(800))") }
                stops += 1
            }
            instances[slot] = nil
        }
        for slot in instances.indices where instances[slot]?.isRunning != true {
            await noteUnexpectedExit(instances[slot])
            try start(slot)
        }
        #expect(try await fixture.waitUntilCommitted(within: .seconds(ChaosScale.isFull ? 900 : 240)))
        for instance in instances.compactMap({ $0 }) {
            await scrape(instance)
            instance.signal(SIGTERM)
            let status = await instance.waitForExit(within: .seconds(60))
            if status != 0 { badExits.append("status \(String(describing: status)): \(instance.output.suffix(800))") }
        }
        #expect(badExits.isEmpty, "instances stopped with SIGTERM exited badly: \(badExits)")
        #expect(unexpectedExits.isEmpty, "instances the storm did not stop exited: \(unexpectedExits)")
        let ledger = all.flatMap { fixture.ledger(at: ledgers[ObjectIdentifier($0)]) }
        let report = ScenarioReport(scenario: "rebalance storm", expected: fixture.goodIDs(0..<events), ledger: ledger, restarts: kills + stops)
        let revocations = seen.values.reduce(0) { $0 + $1.revoked }
        let losses = seen.values.reduce(0) { $0 + $1.lost }
        let refused = seen.values.reduce(0) { $0 + $1.refused }
        let givenUp = seen.values.reduce(0) { $0 + $1.givenUp }
        let exposed = exposedAtExit.reduce(0, +)
        // An instance killed or stopped before its endpoints ever answered: its revocations
        // and losses are unknown, so it may have given up at most the engine's bound.
        let unscraped = all.count - seen.count
        print(report, "(\(kills) kills, \(stops) graceful stops, \(all.count) starts; \(revocations) revocations, \(losses) losses, \(refused) commits refused; \(givenUp) records given up uncommitted at revocations and losses, \(exposed) processed and not committed at kills and stops (at most \(exposedAtExit.max() ?? 0) at one); \(unscraped) never scraped)")
        #expect(report.lost == 0, "\(report)")
        #expect(revocations + losses + kills > 0, "no partition ever changed hands: the scenario did not happen")
        // Every record processed twice was first processed by a run that then gave its
        // partition up before the commit: at a kill or stop (measured from its own ledger
        // against the group's commits) or at a revocation or loss (the run's own count).
        #expect(report.duplicated <= exposed + givenUp + unscraped * ChaosScale.exposure, "\(report)")
    }
}

/// Bad records of every kind the issue names, each with a fragment its dead-letter reason must contain.
enum PoisonCorpus {
    struct Record {
        let kind: String
        let key: [UInt8]?
        let value: [UInt8]?
        let reason: String
    }

    static let maxEventBytes = 262_144
    static let event = #"{"id":"poison","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s""#

    static let records: [Record] = [
        Record(kind: "truncated JSON", key: k("s"), value: b(event + #","properties":{"a":"#), reason: "ends with 2 unclosed brackets"),
        Record(kind: "truncated in a string", key: k("s"), value: b(#"{"id":"poi"#), reason: "ends inside a string"),
        Record(kind: "not JSON", key: k("s"), value: b("{id: poison}"), reason: "not valid JSON"),
        Record(kind: "trailing garbage", key: k("s"), value: b(event + "} }"), reason: "unexpected data after the end of the value"),
        Record(kind: "id of the wrong type", key: k("s"), value: b(#"{"id":17,"change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#),
               reason: "field 'id': expected a string"),
        Record(kind: "properties of the wrong type", key: k("s"), value: b(event + #","properties":[1,2]}"#), reason: "field 'properties': expected an object"),
        Record(kind: "metadata of the wrong type", key: k("s"), value: b(event + #","metadata":{"a":{}}}"#), reason: "field 'metadata.a': expected a string"),
        Record(kind: "unknown change_type", key: k("s"), value: b(#"{"id":"p","change_type":"node_melted","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#),
               reason: "node_melted"),
        Record(kind: "bad timestamp", key: k("s"), value: b(#"{"id":"p","change_type":"node_added","timestamp":"soon","subject":"s"}"#), reason: "RFC 3339"),
        Record(kind: "edge without predicate", key: k("s"), value: b(#"{"id":"p","change_type":"edge_added","timestamp":"2025-10-10T12:00:00Z","subject":"s","object":"o"}"#),
               reason: "field 'predicate': required"),
        Record(kind: "huge string", key: k("s"), value: b(event + #","properties":{"blob":""# + String(repeating: "x", count: 400_000) + #""}}"#),
               reason: "exceeds the limit of \(maxEventBytes)"),
        Record(kind: "deep nesting", key: k("s"), value: b(event + #","properties":{"a":"# + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + "}}"),
               reason: "nested more than 512 levels deep"),
        Record(kind: "number out of range", key: k("s"), value: b(event + #","properties":{"n":1e400}}"#), reason: "field 'properties.n'"),
        Record(kind: "invalid UTF-8", key: k("s"), value: b(#"{"id":"p"#) + [0xC3, 0x28, 0xFF] + b(#"","subject":"s"}"#), reason: "invalid UTF-8 at byte 8"),
        Record(kind: "escaped lone surrogate", key: k("s"), value: b(#"{"id":"p\udc00","change_type":"node_added","timestamp":"2025-10-10T12:00:00Z","subject":"s"}"#),
               reason: "not valid JSON"),
        Record(kind: "binary", key: k("s"), value: (0..<256).map { UInt8(($0 * 37 + 11) % 256) }, reason: "invalid UTF-8"),
        Record(kind: "top-level array", key: k("s"), value: b("[]"), reason: "expected an object"),
        Record(kind: "top-level null", key: k("s"), value: b("null"), reason: "null where an object is required"),
        Record(kind: "empty value", key: k("s"), value: [], reason: "empty record"),
        Record(kind: "null value", key: k("s"), value: nil, reason: "empty record"),
        Record(kind: "null key and null value", key: nil, value: nil, reason: "empty record"),
        Record(kind: "null key, not JSON", key: nil, value: b("%%%"), reason: "not valid JSON"),
    ]

    private static func b(_ text: String) -> [UInt8] { Array(text.utf8) }
    private static func k(_ text: String) -> [UInt8] { Array(text.utf8) }
}

@Suite("Fault scenarios: poison input", .timeLimit(.minutes(5)))
struct PoisonInputTests {
    @Test("A corpus of bad records mixed into good traffic: every bad one dead-lettered with its reason, every good one processed, the process never dies")
    func poisonCorpus() async throws {
        // Each round is about 1 MB; the embedded broker keeps about 5 MB per partition.
        let fixture = try await ServiceFixture(partitions: 16, outputPartitions: 8)
        let rounds = ChaosScale.isFull ? 20 : 2
        let good = rounds * 1000
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: fixture.cluster.connection()), logger: fixture.logger)
        // Where each bad record landed, to match its dead letter; good events around them.
        var expectedReason: [String: (kind: String, reason: String)] = [:]
        var keylessGood: Set<String> = []
        for round in 0..<rounds {
            try await ChangeEventGenerator(keys: 200).send(round * 1000..<(round + 1) * 1000, to: fixture.input, with: producer)
            for (index, record) in PoisonCorpus.records.enumerated() {
                // Keys spread the big records over partitions (the broker's space per partition is small).
                let key = record.key.map { $0 + Array("-\(round)-\(index)".utf8) }
                let report = try await producer.send(topic: fixture.input, key: key, value: record.value)
                expectedReason["\(report.partition)/\(report.offset)"] = (record.kind, record.reason)
            }
            // A good event without a key is not poison: it orders by its subject.
            let id = "keyless-\(round)"
            let keyless = #"{"id":"\#(id)","change_type":"node_updated","timestamp":"2025-10-10T12:00:00Z","subject":"node-1"}"#
            _ = try await producer.send(topic: fixture.input, key: nil, value: Array(keyless.utf8))
            keylessGood.insert(id)
        }
        try await producer.close()

        #expect(try await fixture.truncatedPartitions(of: fixture.input, count: 16).isEmpty, "the broker dropped input")
        let run = try fixture.start(config: fixture.writeConfig(orchestrator: ["maxEventBytes: \(PoisonCorpus.maxEventBytes)"]))
        #expect(try await fixture.waitUntilCommitted())
        #expect(try await fixture.truncatedPartitions(of: "regen.dlq", count: 8).isEmpty, "the broker dropped dead letters")
        let letters = try await fixture.readAll("regen.dlq", expecting: expectedReason.count)
        #expect(run.isRunning, "the process died: \(run.output.suffix(1500))")
        run.signal(SIGTERM)
        #expect(await run.waitForExit() == 0)

        let ledger = fixture.ledger()
        let report = ScenarioReport(
            scenario: "poison input", expected: fixture.goodIDs(0..<good).union(keylessGood), ledger: ledger, restarts: 0)
        print(report, "and \(letters.count) of \(expectedReason.count) bad records dead-lettered")
        #expect(report.lost == 0 && report.duplicated == 0, "\(report)")
        #expect(Set(ledger).count == good + rounds, "only good events reach the processor")

        #expect(letters.count == expectedReason.count)
        var lettered: Set<String> = []
        for letter in letters {
            let header = { (name: String) in letter.header(name)?.value.map { String(decoding: $0, as: UTF8.self) } }
            let position = "\(header("regen.source.partition") ?? "?")/\(header("regen.source.offset") ?? "?")"
            guard let expected = expectedReason[position] else {
                Issue.record("a dead letter for \(position), which was not a bad record")
                continue
            }
            lettered.insert(position)
            let reason = header("regen.error") ?? ""
            #expect(reason.contains(expected.reason), "\(expected.kind): reason '\(reason)'")
            #expect(letter.value ?? [] == PoisonCorpus.records.first { $0.kind == expected.kind }?.value ?? [],
                    "\(expected.kind): the dead letter does not carry the original value")
        }
        #expect(lettered.count == expectedReason.count, "bad records without a dead letter")
    }
}
