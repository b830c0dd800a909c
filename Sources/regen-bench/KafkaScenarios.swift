import Foundation
import Histogram
import Logging
import Orchestration
import RdKafka
import Regeneration
import RegenService

/// What one `regen run` did to a pre-produced topic, measured from outside.
struct RunOutcome {
    /// From the process start to its first assignment.
    var toAssignment: Duration
    /// From the first assignment to the last commit (or to the time limit).
    var elapsed: Duration
    var committed: Int
    var completed: Bool
    /// Events/s between 10 % and 90 % committed (nil when the run did not get that far).
    var steadyRate: Double?
    var peakRSS: Int
    var exitStatus: Int32?
    var rate: Double { Double(committed) / max(elapsed.seconds, 1e-9) }
}

/// Wall-clock microseconds since 1970 (the ledger's timestamps are the same clock).
func wallMicroseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
}

extension Bench {
    func createTopic(_ name: String, partitions: Int) async throws { try await broker.control("topic \(name) \(partitions)") }

    /// Produces generated events `0..<count` (over `keys` subjects) with `kcat -P` in large
    /// batches, as a batching producer fills a real topic (records sent one by one land as
    /// tiny record batches, which the embedded broker serves many times slower), then checks
    /// that the topic holds them all.
    func produce(_ topic: String, count: Int, keys: Int, prefix: String, partitions: Int) async throws {
        let generator = ChangeEventGenerator(keys: keys, idPrefix: prefix)
        let file = directory.appendingPathComponent("\(topic).events")
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        var chunk: [UInt8] = []
        for index in 0..<count {
            let (key, value) = generator.record(index)
            chunk += key + [UInt8(ascii: "\t")] + value + [UInt8(ascii: "\n")]
            if chunk.count > 1 << 20 || index == count - 1 {
                try handle.write(contentsOf: chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        try handle.close()
        let status = try await runKcat([
            "-P", "-b", broker.bootstrapServers, "-t", topic, "-K", "\t", "-X", "linger.ms=50", "-X", "batch.num.messages=10000",
        ], input: file)
        try? FileManager.default.removeItem(at: file)
        guard status == 0 else { throw BenchError("kcat -P exited with \(status)") }
        let probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(connection: broker.connection, groupID: nextName("probe")), logger: logger)
        var stored = 0
        for partition in 0..<partitions { stored += Int(try await probe.watermarks(of: TopicPartition(topic: topic, partition: partition)).high) }
        try await probe.close()
        guard stored == count else { throw BenchError("\(topic) holds \(stored) records, \(count) were produced") }
    }

    /// kcat with `arguments`, standard input from `input`; its exit status.
    private func runKcat(_ arguments: [String], input: URL) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.kcatPath())
        process.arguments = arguments
        process.standardInput = try FileHandle(forReadingFrom: input)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
        return process.terminationStatus
    }

    static func kcatPath() throws -> String {
        guard let path = ["/usr/bin/kcat", "/usr/local/bin/kcat"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw BenchError("kcat is not installed (make bench installs it: apt-get install kcat)")
        }
        return path
    }

    /// Starts `regen run` on `topic`, waits for its first assignment, and watches its commits
    /// until `events` are committed or `limit` seconds have passed; then stops it (SIGTERM).
    func runRegen(
        topic: String, partitions: Int, events: Int, processor: String, orchestrator: [String] = [], telemetry: String = "bench.telemetry",
        limit: Double, sampleEvery: Duration = .milliseconds(100)
    ) async throws -> RunOutcome {
        let group = nextName(topic)
        try await commitBeginning(group: group, topic: topic, partitions: partitions)
        let run = try RegenRun(
            regen: regen, yaml: yaml(topic: topic, group: group, processor: processor, orchestrator: orchestrator, telemetry: telemetry),
            directory: directory, name: group, logLevel: regenLogLevel)
        let assigned = try await run.assignment()
        let watcher = try CommitWatcher(connection: broker.connection, group: group, topic: topic, partitions: partitions, logger: logger)
        let completed: Bool
        do {
            completed = try await watcher.watch(until: events, deadline: assigned + .milliseconds(Int(limit * 1000)), interval: sampleEvery)
        } catch {
            _ = await run.stop()
            await watcher.close()
            throw error
        }
        let memory = run.memory()
        if !completed {
            // What a failed run needs to be understood: which partitions stayed behind, and what regen complained of.
            say("   not complete after \(limit) s: \(await watcher.behind()); log \(run.log.path)")
            for line in run.problems() { say("     \(line)") }
        }
        let status = await run.stop()
        await watcher.close()
        let last = watcher.samples.last ?? (ContinuousClock.now, 0)
        let end = completed ? (watcher.time(reaching: events) ?? last.time) : last.time
        var steady: Double?
        if let t10 = watcher.time(reaching: events / 10), let t90 = watcher.time(reaching: events * 9 / 10), t90 > t10 {
            steady = Double(events * 9 / 10 - events / 10) / (t90 - t10).seconds
        }
        return RunOutcome(
            toAssignment: assigned - run.startedAt, elapsed: end - assigned, committed: last.committed, completed: completed,
            steadyRate: steady, peakRSS: memory.peak, exitStatus: status)
    }

    /// Starts `group` from committed offsets 0, as a group that ran before: a group with no
    /// committed offset waits about 100 ms in librdkafka's offset reset before its first
    /// fetch, which would count as regen's time.
    func commitBeginning(group: String, topic: String, partitions: Int) async throws {
        let consumer = try KafkaConsumer(configuration: KafkaConsumerConfiguration(connection: broker.connection, groupID: group), logger: logger)
        try await consumer.commitAsOutsider((0..<partitions).map { TopicPartitionOffset(TopicPartition(topic: topic, partition: $0), offset: 0) })
        try await consumer.close()
    }

    static let noop = "type: simulate\n  simulate: { work: none }"

    // MARK: 1. Drain

    func drain() async throws -> ScenarioResult {
        let topic = "bench.drain", events = scale.drainEvents, partitions = scale.drainPartitions
        try await createTopic(topic, partitions: partitions)
        let produceStart = ContinuousClock.now
        try await produce(topic, count: events, keys: 1000, prefix: "drain", partitions: partitions)
        say("   produced \(events) events over \(partitions) partitions in \(ContinuousClock.now - produceStart)")
        var kcatRuns: [(seconds: Double, messages: Int)] = []
        for _ in 0..<scale.kcatRuns { kcatRuns.append(try await kcat(topic: topic)) }
        let kcatBest = kcatRuns.sorted { $0.seconds < $1.seconds }[kcatRuns.count / 2]
        guard kcatBest.messages == events else { throw BenchError("kcat read \(kcatBest.messages) of \(events) events") }
        let kcatRate = Double(events) / kcatBest.seconds
        let outcome = try await runRegen(topic: topic, partitions: partitions, events: events, processor: Self.noop, limit: scale.drainLimitSeconds)
        return result(
            "drain", "1. drain, no-op processor", figure: outcome.rate, unit: "events/s",
            figures: [
                "events_per_s": outcome.rate, "steady_events_per_s": outcome.steadyRate ?? 0, "seconds": outcome.elapsed.seconds,
                "seconds_to_first_assignment": outcome.toAssignment.seconds, "peak_rss_bytes": Double(outcome.peakRSS),
            ],
            baseline: Baseline(
                name: "kcat", figure: kcatRate,
                figures: ["events_per_s": kcatRate, "seconds": kcatBest.seconds, "runs": Double(kcatRuns.count)]),
            ratio: outcome.rate / kcatRate, ratioMeaning: "regen events/s ÷ kcat events/s", completed: outcome.completed,
            counts: ["produced": events, "committed": outcome.committed, "kcat_read": kcatBest.messages],
            settings: [
                "partitions": "\(partitions)", "processor": "simulate, work: none", "regen": "default settings",
                "kcat": "-C -o beginning -e -X queued.min.messages=1000000 -X fetch.wait.max.ms=10 (median of \(kcatRuns.count))",
                "limit_s": "\(scale.drainLimitSeconds)",
            ])
    }

    /// kcat reading the whole topic from the beginning; seconds from start to exit, messages read.
    func kcat(topic: String) async throws -> (seconds: Double, messages: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.kcatPath())
        process.arguments = [
            "-C", "-b", broker.bootstrapServers, "-t", topic, "-o", "beginning", "-e", "-q", "-X", "queued.min.messages=1000000", "-X",
            "fetch.wait.max.ms=10", "-f", "%o\\n",
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        let start = ContinuousClock.now
        try process.run()
        let handle = pipe.fileHandleForReading
        let data = await offThePool { handle.readDataToEndOfFile() }
        while process.isRunning { try await Task.sleep(for: .milliseconds(1)) }
        let seconds = (ContinuousClock.now - start).seconds
        return (seconds, data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) })
    }

    // MARK: 2. Parallel I/O

    func parallelIO() async throws -> ScenarioResult {
        let topic = "bench.parallel", events = scale.parallelEvents, concurrency = 100, seed: UInt64 = 42
        try await createTopic(topic, partitions: 16)
        try await produce(topic, count: events, keys: scale.parallelKeys, prefix: "par", partitions: 16)
        let generator = ChangeEventGenerator(keys: scale.parallelKeys, idPrefix: "par")
        let sleeps = (0..<events).reduce(Duration.zero) { $0 + SimulatedProcessor.jitter(for: generator.id($1), seed: seed, max: .milliseconds(5)) }
        let lowerBound = sleeps.seconds / Double(concurrency)
        let outcome = try await runRegen(
            topic: topic, partitions: 16, events: events,
            processor: "type: simulate\n  simulate: { work: sleep, sleepMs: 0, sleepJitterMs: 5, seed: \(seed) }",
            orchestrator: ["concurrency: \(concurrency)", "adaptiveOptimization: false"], limit: 120,
            // Under a second in all: read the commits every 10 ms, not 100, or the reading is the error.
            sampleEvery: .milliseconds(10))
        return result(
            "parallel_io", "2. parallel I/O, 0-5 ms per event", figure: outcome.elapsed.seconds, unit: "s",
            figures: ["seconds": outcome.elapsed.seconds, "events_per_s": outcome.rate, "sum_of_sleeps_s": sleeps.seconds],
            baseline: Baseline(name: "lower bound: sleeps ÷ \(concurrency)", figure: lowerBound, figures: ["seconds": lowerBound]),
            ratio: outcome.elapsed.seconds / lowerBound, ratioMeaning: "wall time ÷ lower bound (1 is ideal)",
            completed: outcome.completed, counts: ["produced": events, "committed": outcome.committed],
            settings: [
                "keys": "\(scale.parallelKeys)", "concurrency": "\(concurrency)", "adaptive": "off", "sleep": "uniform 0-5 ms, seed \(seed)",
                "partitions": "16",
            ])
    }

    // MARK: 5. Scaling

    func scaling() async throws -> ScenarioResult {
        var rates: [Double] = []
        var counts: [String: Int] = [:]
        var figures: [String: Double] = [:]
        var completed = true
        for level in scale.scalingLevels {
            let topic = "bench.scaling.\(level)", events = min(scale.scalingMaxEvents, scale.scalingEventsPerLevel * level)
            try await createTopic(topic, partitions: 16)
            try await produce(topic, count: events, keys: 1000, prefix: "scale\(level)", partitions: 16)
            let outcome = try await runRegen(
                topic: topic, partitions: 16, events: events, processor: "type: simulate\n  simulate: { work: sleep, sleepMs: 5 }",
                orchestrator: ["concurrency: \(level)", "adaptiveOptimization: false"], limit: 120)
            rates.append(outcome.rate)
            completed = completed && outcome.completed
            counts["produced_\(level)"] = events
            counts["committed_\(level)"] = outcome.committed
            figures["events_per_s_\(level)"] = outcome.rate
            figures["speedup_\(level)"] = outcome.rate / max(rates[0], 1e-9)
            say("   concurrency \(level): \(Report.format(outcome.rate)) events/s (\(events) events)")
        }
        if !chartPath.isEmpty {
            try FileManager.default.createDirectory(
                at: URL(fileURLWithPath: chartPath).deletingLastPathComponent(), withIntermediateDirectories: true)
            try Report.scalingChart(
                levels: scale.scalingLevels, rates: rates, title: "regen run, 5 ms sleep per event: events/s by concurrency (\(revision))"
            ).write(toFile: chartPath, atomically: true, encoding: .utf8)
        }
        let top = scale.scalingLevels.last ?? 1
        let speedup = (rates.last ?? 0) / max(rates.first ?? 1, 1e-9)
        return result(
            "scaling", "5. scaling, 5 ms sleep, concurrency 1-\(top)", figure: speedup, unit: "× speedup at \(top)",
            figures: figures, baseline: Baseline(name: "ideal", figure: Double(top), figures: ["speedup": Double(top)]),
            ratio: speedup / Double(top), ratioMeaning: "speedup ÷ concurrency (1 is ideal)", completed: completed, counts: counts,
            settings: [
                "levels": scale.scalingLevels.map(String.init).joined(separator: ","),
                "events_per_level": "min(\(scale.scalingMaxEvents), \(scale.scalingEventsPerLevel) × concurrency)", "keys": "1000",
                "adaptive": "off", "chart": chartPath,
            ])
    }

    // MARK: 6. Latency

    func latency() async throws -> ScenarioResult {
        let topic = "bench.latency", partitions = scale.latencyPartitions
        let total = Int(Double(scale.latencyRate) * scale.latencySeconds)
        try await createTopic(topic, partitions: partitions)
        let group = nextName(topic)
        let ledger = directory.appendingPathComponent("\(group).ledger").path
        // The embedded broker holds an idle fetch for the whole fetch.wait.max.ms (Kafka answers
        // as soon as data arrives), so both readers here wait at most 10 ms, like kcat above.
        let cycle = ["cycle: { maxEvents: 10000, maxWaitMs: 100 }"]
        let run = try RegenRun(
            regen: regen,
            yaml: yaml(
                topic: topic, group: group, processor: "type: simulate\n  simulate: { work: none, ledger: \(ledger), ledgerTimestamps: true }",
                orchestrator: cycle, fetchWaitMaxMs: 10),
            directory: directory, name: group, logLevel: regenLogLevel)
        _ = try await run.assignment()
        let watcher = try CommitWatcher(connection: broker.connection, group: group, topic: topic, partitions: partitions, logger: logger)
        let sent = try await Self.producePaced(
            connection: broker.connection, logger: logger, topic: topic, total: total, rate: scale.latencyRate, prefix: "lat")
        let completed = try await watcher.watch(until: total, deadline: .now + .seconds(90))
        let memory = run.memory()
        await run.stop()
        await watcher.close()
        var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        var processed = 0
        let text = (try? String(contentsOfFile: ledger, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "\t")
            guard parts.count == 2, let done = Int64(parts[1]), let start = sent[String(parts[0])] else { continue }
            processed += 1
            histogram.record(UInt64(max(0, done - start)))
        }
        let base = try await bareConsumerLatency(partitions: partitions, total: total)
        let p99 = Double(histogram.valueAtPercentile(99)) / 1000
        return result(
            "latency", "6. latency at \(scale.latencyRate) events/s, p99", figure: p99, unit: "ms",
            figures: [
                "p50_ms": Double(histogram.valueAtPercentile(50)) / 1000, "p99_ms": p99, "max_ms": Double(histogram.max) / 1000,
                "peak_rss_bytes": Double(memory.peak),
            ],
            baseline: Baseline(
                name: "bare consumer p99", figure: Double(base.histogram.valueAtPercentile(99)) / 1000,
                figures: [
                    "p50_ms": Double(base.histogram.valueAtPercentile(50)) / 1000,
                    "p99_ms": Double(base.histogram.valueAtPercentile(99)) / 1000, "max_ms": Double(base.histogram.max) / 1000,
                ]),
            ratio: p99 / max(Double(base.histogram.valueAtPercentile(99)) / 1000, 1e-9), ratioMeaning: "regen p99 ÷ bare consumer p99",
            completed: completed,
            counts: [
                "produced": total, "processed": processed, "committed": watcher.samples.last?.committed ?? 0,
                "baseline_received": base.received, "baseline_partitions": partitions,
                "baseline_partitions_received": base.partitionsReceived, "baseline_partitions_assigned_at_end": base.partitionsAssigned,
            ],
            settings: [
                "rate": "\(scale.latencyRate)/s for \(scale.latencySeconds) s", "partitions": "\(partitions)",
                "regen": cycle.joined() + ", kafka.fetchWaitMaxMs: 10, simulate work: none, ledger with timestamps",
                "latency": "ledger time (event processed) − produce time; baseline: receive time in a bare KafkaConsumer poll loop (fetch.wait.max.ms 10)",
            ])
    }

    /// Produces `total` generated events at `rate` per second (a batch every 10 ms) and
    /// returns each id's send time (wall-clock microseconds).
    static func producePaced(
        connection: KafkaConnection, logger: Logger, topic: String, total: Int, rate: Int, prefix: String
    ) async throws -> [String: Int64] {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: connection), logger: logger)
        let generator = ChangeEventGenerator(keys: 1000, idPrefix: prefix)
        let perTick = max(1, rate / 100)
        var sent: [String: Int64] = [:]
        sent.reserveCapacity(total)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var index = 0
            var tick = 0
            while index < total {
                let due = start + .milliseconds(10 * tick)
                if due > .now { try await Task.sleep(until: due) }
                let end = min(total, index + perTick)
                var batch: [(key: [UInt8], value: [UInt8])] = []
                for i in index..<end {
                    batch.append(generator.record(i))
                    sent[generator.id(i)] = wallMicroseconds()
                }
                group.addTask { [batch] in
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        for record in batch { inner.addTask { _ = try await producer.send(topic: topic, key: record.key, value: record.value) } }
                        try await inner.waitForAll()
                    }
                }
                index = end
                tick += 1
            }
            try await group.waitForAll()
        }
        try await producer.close()
        return sent
    }

    /// The same paced stream read by a bare `KafkaConsumer` poll loop: the latency floor.
    func bareConsumerLatency(
        partitions: Int, total: Int
    ) async throws -> (histogram: Histogram<UInt64>, received: Int, partitionsReceived: Int, partitionsAssigned: Int) {
        let topic = "bench.latency.base"
        try await createTopic(topic, partitions: partitions)
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(connection: broker.connection, groupID: nextName(topic), fetchWaitMax: .milliseconds(10)),
            logger: logger)
        try await consumer.subscribe([topic])
        // Produce only once the consumer owns every partition: an assignment may come in
        // parts, and records of a partition assigned late would not be a latency at all.
        let joinDeadline = ContinuousClock.now + .seconds(60)
        while consumer.assignment.count < partitions && ContinuousClock.now < joinDeadline {
            _ = try await consumer.poll(maxMessages: 1, timeout: .milliseconds(100))
        }
        guard consumer.assignment.count == partitions else {
            try await consumer.close()
            throw BenchError("the bare consumer owns \(consumer.assignment.count) of \(partitions) partitions after 60 s")
        }
        let (connection, logger, rate) = (broker.connection, logger, scale.latencyRate)
        async let production = Self.producePaced(connection: connection, logger: logger, topic: topic, total: total, rate: rate, prefix: "base")
        var arrivals: [(id: String, at: Int64)] = []
        arrivals.reserveCapacity(total)
        var partitionsReceived: Set<Int> = []
        let deadline = ContinuousClock.now + .seconds(scale.latencySeconds + 60)
        while arrivals.count < total && ContinuousClock.now < deadline {
            for message in try await consumer.poll(maxMessages: 1000, timeout: .milliseconds(100)) {
                let at = wallMicroseconds()
                partitionsReceived.insert(message.partition)
                if let event = try? ChangeEvent.decode(message.value) { arrivals.append((event.id, at)) }
            }
        }
        let sent = try await production
        let partitionsAssigned = consumer.assignment.count
        try await consumer.close()
        var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        for arrival in arrivals { if let start = sent[arrival.id] { histogram.record(UInt64(max(0, arrival.at - start))) } }
        return (histogram, arrivals.count, partitionsReceived.count, partitionsAssigned)
    }

    // MARK: 7. Template

    func template() async throws -> ScenarioResult {
        let topic = "bench.template", events = scale.templateEvents
        try await createTopic(topic, partitions: 32)
        try await produce(topic, count: events, keys: scale.templateSubjects, prefix: "tpl", partitions: 32)
        let telemetry = nextName("bench.template.telemetry")
        let output = directory.appendingPathComponent(nextName("template-output")).path
        let outcome = try await runRegen(
            topic: topic, partitions: 32, events: events,
            processor: "type: template\n  template: { templates: \"\(templates)\", output: \"\(output)\" }", telemetry: telemetry,
            limit: scale.templateLimitSeconds)
        var cycles = 0
        var renders = 0
        for record in try await readAll(telemetry) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(record)) as? [String: Any],
                object["event_type"] as? String == "regeneration_completed", (object["tags"] as? [String: String])?["scope"] == "cycle",
                let data = object["data"] as? [String: Any]
            else { continue }
            cycles += 1
            renders += (data["regenerations"] as? Int) ?? 0
        }
        let noop = try await runRegen(topic: topic, partitions: 32, events: events, processor: Self.noop, limit: scale.templateLimitSeconds)
        return result(
            "template", "7. template processor, \(scale.templateSubjects) subjects", figure: outcome.rate, unit: "events/s",
            figures: [
                "events_per_s": outcome.rate, "renders_per_cycle": Double(renders) / Double(max(cycles, 1)),
                "artifacts_per_s": Double(renders) / max(outcome.elapsed.seconds, 1e-9), "seconds": outcome.elapsed.seconds,
                "peak_rss_bytes": Double(outcome.peakRSS),
            ],
            baseline: Baseline(name: "no-op processor", figure: noop.rate, figures: ["events_per_s": noop.rate, "seconds": noop.elapsed.seconds]),
            ratio: outcome.rate / max(noop.rate, 1e-9), ratioMeaning: "template events/s ÷ no-op events/s", completed: outcome.completed,
            counts: ["produced": events, "committed": outcome.committed, "cycles": cycles, "renders": renders, "baseline_committed": noop.committed],
            settings: [
                "templates": templates, "subjects": "\(scale.templateSubjects)", "partitions": "32", "regen": "default settings",
                "limit_s": "\(scale.templateLimitSeconds)",
            ])
    }

    /// Every record value of `topic`, read by a fresh group until it goes quiet for 2 s.
    func readAll(_ topic: String) async throws -> [[UInt8]] {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(connection: broker.connection, groupID: nextName("reader"), fetchWaitMax: .milliseconds(50)),
            logger: logger)
        try await consumer.subscribe([topic])
        var values: [[UInt8]] = []
        var lastArrival = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let batch = try await consumer.poll(maxMessages: 10_000, timeout: .milliseconds(200))
            if !batch.isEmpty || consumer.assignment.isEmpty { lastArrival = .now }
            values += batch.compactMap(\.value)
            if ContinuousClock.now - lastArrival > .seconds(2) { break }
        }
        try await consumer.close()
        return values
    }

    // MARK: make soak

    func soak(minutes: Double, rate: Int, output: String) async throws {
        let topic = "bench.soak", partitions = 128
        try await createTopic(topic, partitions: partitions)
        let group = nextName(topic)
        let run = try RegenRun(
            regen: regen, yaml: yaml(topic: topic, group: group, processor: Self.noop), directory: directory, name: group, logLevel: regenLogLevel)
        _ = try await run.assignment()
        let watcher = try CommitWatcher(connection: broker.connection, group: group, topic: topic, partitions: partitions, logger: logger)
        var samples: [[String: Double]] = []
        func sample(_ minute: Double) async throws {
            let memory = run.memory()
            let committed = try await watcher.committed()
            samples.append(["minute": minute, "rss_bytes": Double(memory.current), "peak_rss_bytes": Double(memory.peak), "committed": Double(committed)])
            say(String(format: "minute %5.1f: RSS %6.1f MB (peak %6.1f MB), %d events committed", minute, Double(memory.current) / 1e6,
                         Double(memory.peak) / 1e6, committed))
        }
        try await sample(0)
        let total = Int(Double(rate) * minutes * 60)
        let start = ContinuousClock.now
        let (connection, logger) = (broker.connection, logger)
        async let production = Self.producePaced(connection: connection, logger: logger, topic: topic, total: total, rate: rate, prefix: "soak")
        var minute = 1.0
        while minute <= minutes {
            try await Task.sleep(until: start + .milliseconds(Int(minute * 60_000)))
            try await sample(minute)
            minute += 1
        }
        _ = try await production
        _ = try await watcher.watch(until: total, deadline: .now + .seconds(120))
        try await sample((ContinuousClock.now - start).seconds / 60)
        await run.stop()
        await watcher.close()
        let report: [String: Any] = [
            "rate": rate, "minutes": minutes, "produced": total, "samples": samples, "git_revision": revision,
            "machine": ["cores": machine.cores, "memory_bytes": machine.memoryBytes, "librdkafka": machine.librdkafka],
        ]
        try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: output))
        say("soak report: \(output)")
    }
}
