import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Orchestration
import RdKafka
import RegenService
import Testing

/// The HTTP endpoints of a real `regen run` on the embedded cluster, asked with a real
/// HTTP client: probes in each state, metrics checked by promtool and scraped by a real
/// Prometheus, stats, and the JSON log format.
@Suite("Operations", .serialized, .timeLimit(.minutes(5)))
struct OperationsTests {
    @Test("/readyz is 503 until the group assigns partitions and 200 after; /healthz is 200 throughout; /stats and /metrics count what the ledger holds")
    func readinessAndCounts() async throws {
        let fixture = try await ServiceFixture(partitions: 4)
        try await fixture.produce(0..<400, malformedRatio: 0.05)
        // No member can join while every JoinGroup fails.
        try await fixture.cluster.injectErrors(
            Array(repeating: KafkaResponseCode(rawValue: 15), count: 10_000), for: KafkaAPIKey(rawValue: 11))  // COORDINATOR_NOT_AVAILABLE
        let run = try fixture.start(config: fixture.writeConfig())
        let port = try #require(run.httpPort)
        let notReady = try await waitForAnswer(port, "/readyz", within: .seconds(30)) { $0.status == 503 }
        #expect(notReady?.failedChecks == ["assignment"], "\(String(describing: notReady))")
        #expect(try await get(port, "/healthz").status == 200)
        #expect(fixture.ledger().isEmpty)

        try await fixture.cluster.clearErrors(for: KafkaAPIKey(rawValue: 11))
        #expect(try await waitForAnswer(port, "/readyz", within: .seconds(60)) { $0.status == 200 } != nil)
        #expect(try await fixture.waitUntilCommitted(within: .seconds(60)))
        let good = fixture.goodIDs(0..<400, malformedRatio: 0.05).count

        let stats = try await get(port, "/stats")
        #expect(stats.status == 200)
        let document = try JSONDecoder().decode([String: JSONValue].self, from: stats.body)
        #expect(document["events_processed"]?.numberValue == 400, "\(document)")
        #expect(document["events_dead_lettered"]?.numberValue == Double(400 - good), "\(document)")

        let metrics = try await get(port, "/metrics")
        #expect(metrics.status == 200)
        let samples = PrometheusText(metrics.text)
        #expect(samples["regen_events_total", ["outcome": "succeeded"]] == Double(good))
        #expect(samples["regen_dead_letters_total", ["reason": "invalid_input"]] == Double(400 - good))
        #expect(samples["regen_assigned_partitions"] == 4)
        #expect((samples["regen_commits_total", ["result": "succeeded"]] ?? 0) >= 1)
        #expect((samples["regen_cycles_total"] ?? 0) == samples["regen_cycle_duration_seconds_count"])
        #expect(fixture.ledger().count == good)

        if let promtool = findExecutable("promtool") {
            let check = try runTool(promtool, ["check", "metrics"], input: metrics.body)
            #expect(check.status == 0, "promtool check metrics: \(check.output)")
        } else {
            print("OperationsTests: promtool not installed (apt-get install prometheus); skipping its check")
        }
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
    }

    @Test("/healthz is 503 (stuck) when work waits longer than service.http.stuckAfterMs without a cycle finishing, while /readyz stays 200")
    func stuck() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<20)
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["eventTimeoutMs: 120000"], simulate: "hangEvery: 1, hangMs: 120000"),
            arguments: ["--set", "service.http.stuckAfterMs=2000"])
        let port = try #require(run.httpPort)
        #expect(try await waitForAnswer(port, "/readyz", within: .seconds(30)) { $0.status == 200 } != nil)
        let stuck = try await waitForAnswer(port, "/healthz", within: .seconds(30)) { $0.status == 503 }
        #expect(stuck?.failedChecks == ["stuck"], "\(String(describing: stuck))")
        #expect(fixture.ledger().isEmpty, "a cycle finished: the precondition of the check does not hold")
        #expect(try await get(port, "/readyz").status == 200)
        run.signal(SIGKILL)
    }

    @Test("/healthz is 503 (fatal) once the dead-letter producer failed fatally, though records still flow")
    func fatal() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        let telemetry = try await ServiceFixture(partitions: 1)
        try await fixture.produce(0..<100)
        // Refused authorization for its producer id is fatal to the idempotent dead-letter
        // producer, the only producer on this cluster (telemetry goes to the other one).
        try await fixture.cluster.injectErrors([KafkaResponseCode(rawValue: 31)], for: KafkaAPIKey(rawValue: 22))
        let run = try fixture.start(
            config: fixture.writeConfig(), arguments: ["--set", "kafka.telemetryBootstrapServers=\(telemetry.cluster.bootstrapServers)"])
        let port = try #require(run.httpPort)
        let fatal = try await waitForAnswer(port, "/healthz", within: .seconds(60)) { $0.status == 503 }
        #expect(fatal?.failedChecks == ["fatal"], "\(String(describing: fatal))")
        #expect(fatal?.text.contains("dead-letter producer") == true, "\(String(describing: fatal))")
        #expect(try await fixture.waitUntilProcessed(atLeast: 100))
        #expect(run.isRunning)
        #expect(try await get(port, "/healthz").status == 503)
        run.signal(SIGKILL)
    }

    @Test("/readyz is 503 (breaker) while the circuit breaker is open")
    func breakerOpen() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        let failing = fixture.directory.appendingPathComponent("failing").path
        #expect(FileManager.default.createFile(atPath: failing, contents: nil))
        try await fixture.produce(0..<200)
        let run = try fixture.start(
            config: fixture.writeConfig(
                orchestrator: [
                    "breaker: { windowSize: 10, minimumCalls: 5, failureRatio: 0.5, cooldownMs: 600000, maxCooldownMs: 600000 }",
                    "retry: { maxAttempts: 1 }",
                ],
                simulate: "failWhileFileExists: \(failing)"))
        let port = try #require(run.httpPort)
        let open = try await waitForAnswer(port, "/readyz", within: .seconds(60)) { $0.status == 503 && $0.failedChecks.contains("breaker") }
        #expect(open?.failedChecks == ["breaker"], "\(String(describing: open))")
        let samples = PrometheusText(try await get(port, "/metrics").text)
        #expect(samples["regen_breaker_state"] == 2)
        run.signal(SIGKILL)
    }

    @Test("A real Prometheus scrapes regen during a drain and its API returns the throughput and per-partition lag series")
    func prometheusScrape() async throws {
        guard let prometheus = findExecutable("prometheus") else {
            print("OperationsTests: prometheus not installed (apt-get install prometheus); skipping the scrape test")
            return
        }
        let fixture = try await ServiceFixture(partitions: 3)
        let port = try freePort()
        let prometheusPort = try freePort()
        let data = fixture.directory.appendingPathComponent("prometheus")
        let configuration = fixture.directory.appendingPathComponent("prometheus.yml")
        try """
            global: { scrape_interval: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: regen
                static_configs: [{ targets: ["127.0.0.1:\(port)"] }]
            """.write(to: configuration, atomically: true, encoding: .utf8)
        let server = try ChildProcess(
            prometheus,
            [
                "--config.file=\(configuration.path)", "--storage.tsdb.path=\(data.path)",
                "--web.listen-address=127.0.0.1:\(prometheusPort)", "--log.level=warn",
            ],
            log: fixture.directory.appendingPathComponent("prometheus.log"))
        defer { server.terminate() }
        // 2,000 records of 20 ms, two at a time, take about 20 s: Prometheus sees the drain.
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["concurrency: 2", "adaptiveOptimization: false"], simulate: "work: sleep, sleepMs: 20"),
            arguments: [
                "--set", "service.http.address=127.0.0.1:\(port)", "--set", "kafka.properties.statistics.interval.ms=1000",
            ])
        // Prometheus scrapes regen before there is anything to do.
        var scraped = false
        let end = ContinuousClock.now + .seconds(60)
        while !scraped && ContinuousClock.now < end {
            let up = try await prometheusQuery(prometheusPort, #"up{job="regen"}"#)
            scraped = up.first.map(sampleValue) == 1
            if !scraped { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(scraped, "Prometheus never scraped regen")
        try await fixture.produce(0..<2000)
        #expect(try await fixture.waitUntilCommitted(within: .seconds(120)))
        try await Task.sleep(for: .seconds(3))  // a few scrapes after the end

        let lagSeries = try await prometheusQuery(prometheusPort, "regen_consumer_lag")
        #expect(Set(lagSeries.compactMap { ($0["metric"] as? [String: String])?["partition"] }) == ["0", "1", "2"], "\(lagSeries)")
        #expect(lagSeries.allSatisfy { sampleValue($0) == 0 }, "lag after the drain: \(lagSeries)")
        // During the drain, partitions lagged: the series saw values above zero.
        let lagged = try await prometheusQuery(prometheusPort, "max_over_time(regen_consumer_lag[5m])")
        #expect(lagged.contains { (sampleValue($0) ?? 0) > 0 }, "\(lagged)")
        let processed = try await prometheusQuery(prometheusPort, #"regen_events_total{outcome="succeeded"}"#)
        #expect(processed.first.map(sampleValue) == 2000, "\(processed)")
        let rate = try await prometheusQuery(prometheusPort, #"max_over_time(rate(regen_events_total{outcome="succeeded"}[5s])[5m:1s])"#)
        #expect((rate.first.map(sampleValue) ?? 0) ?? 0 > 10, "throughput series: \(rate)")
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
    }

    @Test("--log-format json writes one JSON object per line with timestamp, level, label, message and the metadata; no secret in either format")
    func jsonLogs() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<50)
        let secret = "s3cret-\(UUID().uuidString.prefix(8))"
        let secretFile = fixture.directory.appendingPathComponent("password")
        try secret.write(to: secretFile, atomically: true, encoding: .utf8)
        chmod(secretFile.path, 0o600)
        for format in ["json", "text"] {
            let run = try fixture.start(
                config: fixture.writeConfig(group: "logs-\(format)"),
                arguments: [
                    "--log-format", format, "--log-level", "debug",
                    "--set", "kafka.saslPasswordFile=\(secretFile.path)", "--set", "kafka.saslUsername=regen",
                    "--set", "kafka.saslMechanism=PLAIN", "--set", "kafka.securityProtocol=sasl_plaintext",
                ],
                name: "logs-\(format)")
            // SASL against a broker that does not speak it: connection errors get logged, with
            // their context. Wait for the first line at warning or error level (read by its level field).
            func level(_ line: Substring) -> String? {
                if format == "json" { return (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["level"] as? String }
                let fields = line.split(separator: " ", maxSplits: 2)
                return fields.count > 1 ? String(fields[1]) : nil
            }
            let end = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < end, !run.output.split(separator: "\n").contains(where: { ["warning", "error"].contains(level($0)) }) {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(run.output.split(separator: "\n").contains { ["warning", "error"].contains(level($0)) }, "no connection error was logged")
            run.signal(SIGTERM)
            #expect(await run.waitForExit(within: .seconds(60)) != nil)
            let output = run.output
            #expect(!output.contains(secret), "the secret appears in the \(format) log")
            guard format == "json" else { continue }
            let lines = output.split(separator: "\n")
            #expect(lines.count > 5)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not one JSON object: \(line)")
                guard let object else { continue }
                let timestamp = object["timestamp"] as? String ?? ""
                #expect(timestamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(line)")
                #expect(object["level"] is String && object["label"] is String && object["message"] is String, "\(line)")
            }
            #expect(lines.contains { $0.contains(#""group":"logs-json""#) }, "metadata fields are written")
        }
    }

    @Test("Secrets given by environment and by file reach no log line, no telemetry or alert record, no dead letter and no command's environment")
    func secretsStayInside() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<40, malformedRatio: 0.1)
        let inEnvironment = "env-s3cret-\(UUID().uuidString.prefix(8))"
        let inFile = "file-s3cret-\(UUID().uuidString.prefix(8))"
        let unlisted = "unlisted-s3cret-\(UUID().uuidString.prefix(8))"
        let secretFile = fixture.directory.appendingPathComponent("key-password")
        try inFile.write(to: secretFile, atomically: true, encoding: .utf8)
        chmod(secretFile.path, 0o600)
        // Even offsets append the command's whole environment to a file; odd ones write it to
        // stderr and fail, so it would reach the dead letter's regen.error and the log.
        let seen = fixture.directory.appendingPathComponent("environments.txt").path
        let script = fixture.directory.appendingPathComponent("dump-env.sh").path
        try """
            #!/bin/sh
            cat > /dev/null
            if [ $((REGEN_EVENT_OFFSET % 2)) -eq 0 ]; then env >> '\(seen)'; echo "--" >> '\(seen)'; exit 0; fi
            env >&2
            exit 3
            """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let run = try fixture.start(
            config: fixture.writeConfig(
                orchestrator: ["retry: { maxAttempts: 1 }"],
                processor: "type: command\n  command: { executable: \(script), inheritEnvironment: [SHARED_CA], stderrTailBytes: 65536 }"),
            arguments: ["--log-level", "debug", "--set", "kafka.sslKeyPasswordFile=\(secretFile.path)"],
            environment: ["REGEN_KAFKA__SASL_PASSWORD": inEnvironment, "DATABASE_PASSWORD": unlisted, "SHARED_CA": "/etc/ca.pem"])
        // 40 records: the malformed ones and the odd offsets are dead-lettered.
        #expect(try await fixture.waitUntilCommitted(within: .seconds(120)))
        let letters = try await fixture.readAll("regen.dlq", quiet: .seconds(2))
        let telemetry = try await fixture.readAll("regen.telemetry", quiet: .seconds(2))
        let alerts = try await fixture.readAll("regen.alerts", quiet: .seconds(1))
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)

        let environments = (try? String(contentsOfFile: seen, encoding: .utf8)) ?? ""
        let errors = letters.compactMap { $0.headers.first { $0.key == "regen.error" }?.value.map { String(decoding: $0, as: UTF8.self) } }
        // The test would prove nothing if the environments were never seen.
        #expect(environments.contains("REGEN_EVENT_OFFSET=") && environments.contains("SHARED_CA=/etc/ca.pem"))
        #expect(errors.contains { $0.contains("REGEN_EVENT_OFFSET=") && $0.contains("SHARED_CA=/etc/ca.pem") }, "no dead letter carries a command's stderr")
        #expect(!telemetry.isEmpty)
        func bytes(_ message: KafkaMessage) -> String {
            ([message.key ?? [], message.value ?? []] + message.headers.map { Array($0.key.utf8) + ($0.value ?? []) })
                .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
        }
        let places: [(String, String)] = [("the log", run.output), ("a command's environment", environments)]
            + letters.map { ("a dead letter", bytes($0)) } + telemetry.map { ("a telemetry record", bytes($0)) }
            + alerts.map { ("an alert", bytes($0)) }
        for (place, text) in places {
            for secret in [inEnvironment, inFile, unlisted] {
                let leaked = text.contains(secret)  // (not in the expectation: its failure would print the text, secret and all)
                #expect(!leaked, "\(secret.prefix { $0 != "-" })'s secret in \(place)")
            }
        }
    }

    @Test("A record's valid traceparent reaches the JSON log lines of its attempts (trace_id, span_id) and its dead letter (a child span)")
    func tracedLogs() async throws {
        let fixture = try await ServiceFixture(partitions: 1)
        let generator = ChangeEventGenerator(keys: 10)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: fixture.cluster.connection()), logger: fixture.logger)
        var traces: [String: String] = [:]  // trace id -> the record's own span id
        for index in 0..<10 {
            let traceID = String(format: "%032x", index + 1)
            let spanID = String(format: "%016x", 0xabc0 + index)
            traces[traceID] = spanID
            let record = generator.record(index)
            _ = try await producer.send(
                topic: fixture.input, key: record.key, value: record.value,
                headers: [KafkaHeader(key: "traceparent", string: "00-\(traceID)-\(spanID)-01")])
        }
        try await producer.close()
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["retry: { maxAttempts: 1 }"], simulate: "failureRate: 1.0"),
            arguments: ["--log-format", "json"])
        let letters = try await fixture.readAll("regen.dlq", expecting: 10)
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)

        #expect(letters.count == 10)
        for letter in letters {
            let header = letter.headers.first { $0.key == "traceparent" }?.value.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let parts = header.split(separator: "-").map(String.init)
            #expect(parts.count == 4 && traces[parts[1]] != nil && traces[parts[1]] != parts[2], "a child span of the record's: \(header)")
            #expect(letter.headers.filter { $0.key == "traceparent" }.count == 1)
        }
        let lines = run.output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let traced = lines.filter { $0["trace_id"] != nil }
        #expect(Set(traced.compactMap { $0["trace_id"] as? String }) == Set(traces.keys), "every record's trace is in the log")
        #expect(traced.allSatisfy { ($0["span_id"] as? String)?.count == 16 })
    }

    @Test("/readyz is 503 (commits) while offset commits keep failing past the bound, and 200 again once they succeed")
    func commitsFailing() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<200)
        try await fixture.cluster.injectErrors(Array(repeating: .coordinatorNotAvailable, count: 100_000), for: .offsetCommit)
        let run = try fixture.start(config: fixture.writeConfig(), arguments: ["--set", "service.http.commitsFailingAfterMs=1000"])
        let port = try #require(run.httpPort)
        let failing = try await waitForAnswer(port, "/readyz", within: .seconds(60)) { $0.failedChecks.contains("commits") }
        #expect(failing?.status == 503 && failing?.failedChecks == ["commits"], "\(String(describing: failing))")
        let samples = PrometheusText(try await get(port, "/metrics").text)
        #expect((samples["regen_commits_total", ["result": "failed"]] ?? 0) >= 1)
        #expect(try await fixture.commitProgress().allSatisfy { $0.committed < 0 }, "a commit got through the injected errors")

        try await fixture.cluster.clearErrors(for: .offsetCommit)
        #expect(try await waitForAnswer(port, "/readyz", within: .seconds(60)) { $0.status == 200 } != nil)
        #expect(try await fixture.waitUntilCommitted(within: .seconds(60)))
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
    }

    @Test("An HTTP address already taken is a runtime failure: regen exits with status 1 and processes nothing")
    func addressTaken() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<50)
        let listener = try Listener()
        let run = try fixture.start(
            config: fixture.writeConfig(), arguments: ["--set", "service.http.address=127.0.0.1:\(listener.port)"])
        #expect(await run.waitForExit(within: .seconds(60)) == 1)
        #expect(try await fixture.commitProgress().allSatisfy { $0.committed < 0 }, "nothing committed")
        withExtendedLifetime(listener) {}
    }

    @Test("A second SIGTERM during a graceful stop exits at once with status 130")
    func secondSignal() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<20)
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["eventTimeoutMs: 120000"], simulate: "hangEvery: 1, hangMs: 120000"))
        let port = try #require(run.httpPort)
        // A cycle is in flight and cannot finish: a graceful stop would wait for it (20 s here).
        #expect(await run.waitForMetric("regen_cycles_in_flight") { $0 >= 1 })
        run.signal(SIGTERM)
        #expect(try await waitForAnswer(port, "/readyz", within: .seconds(10)) { $0.failedChecks.contains("stopping") } != nil)
        #expect(run.isRunning, "the first signal stops gracefully, waiting for the cycle")
        let second = ContinuousClock.now
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(10)) == 130)
        #expect(ContinuousClock.now - second < .seconds(10))
    }

    @Test("The health loop runs inside the service: its performance_metric carries the real resident memory and the cached lag; the group join state is steady")
    func healthLoop() async throws {
        let fixture = try await ServiceFixture(partitions: 2)
        try await fixture.produce(0..<200)
        let run = try fixture.start(
            config: fixture.writeConfig(orchestrator: ["healthCheckIntervalSecs: 1"]),
            arguments: ["--set", "kafka.properties.statistics.interval.ms=500"])
        #expect(try await fixture.waitUntilCommitted(within: .seconds(60)))
        // The same statistics give the group's join state: a member with its assignment is steady.
        #expect(await run.waitForMetric("regen_group_join_state", ["state": "steady"]) { $0 == 1 })
        let end = ContinuousClock.now + .seconds(30)
        var metric: TelemetryEvent?
        while metric == nil && ContinuousClock.now < end {
            let events = try await fixture.readAll("regen.telemetry", quiet: .seconds(2)).compactMap {
                try? JSONDecoder().decode(TelemetryEvent.self, from: Data($0.value ?? []))
            }
            metric = events.last { $0.tags["kind"] == "health_check" && $0.data["pending_work"]?.numberValue != nil }
        }
        run.signal(SIGTERM)
        #expect(await run.waitForExit(within: .seconds(60)) == 0)
        let found = try #require(metric, "no health check with a known lag")
        #expect((found.data["memory_bytes"]?.numberValue ?? 0) > 1_000_000, "\(found.data)")
        #expect((found.data["pending_work"]?.numberValue ?? -1) >= 0)
    }
}

// MARK: - HTTP, Prometheus and process helpers

/// One HTTP answer.
struct HTTPAnswer: Sendable, CustomStringConvertible {
    var status: Int
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }
    /// The `check` of each failure a probe reported.
    var failedChecks: [String] {
        let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any]
        return (object?["failures"] as? [[String: Any]])?.compactMap { $0["check"] as? String } ?? []
    }
    var description: String { "\(status) \(text)" }
}

/// A port nothing listens on now: a listener's, closed again as it goes.
func freePort() throws -> Int { try Listener().port }

func get(_ port: Int, _ path: String) async throws -> HTTPAnswer {
    var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
    request.timeoutInterval = 5
    let (data, response) = try await URLSession.shared.data(for: request)
    return HTTPAnswer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data)
}

/// Asks until an answer satisfies `accept` (connection errors while the server starts
/// are retried); nil if none did in time.
func waitForAnswer(
    _ port: Int, _ path: String, within limit: Duration, accept: (HTTPAnswer) -> Bool
) async throws -> HTTPAnswer? {
    let end = ContinuousClock.now + limit
    while ContinuousClock.now < end {
        if let answer = try? await get(port, path), accept(answer) { return answer }
        try await Task.sleep(for: .milliseconds(100))
    }
    return nil
}

/// The `result` list of a Prometheus instant query.
func prometheusQuery(_ port: Int, _ query: String) async throws -> [[String: Any]] {
    var components = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query")!
    components.queryItems = [URLQueryItem(name: "query", value: query)]
    guard let answer = try? await get(port, "/api/v1/query?" + (components.percentEncodedQuery ?? "")), answer.status == 200 else {
        return []
    }
    let object = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
    return ((object?["data"] as? [String: Any])?["result"] as? [[String: Any]]) ?? []
}

/// The value of one series of an instant query's result.
func sampleValue(_ series: [String: Any]) -> Double? {
    ((series["value"] as? [Any])?.last as? String).flatMap(Double.init)
}

/// Sample values of a Prometheus text exposition, by name and labels.
struct PrometheusText {
    private var samples: [String: Double] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
    }

    subscript(name: String, labels: [String: String] = [:]) -> Double? {
        let key = labels.isEmpty ? name : name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
        return samples[key]
    }
}

func findExecutable(_ name: String) -> String? {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
        let path = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

func runTool(_ executable: String, _ arguments: [String], input: Data) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stdout
    try process.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A socket listening on a loopback port, so that the port is taken.
final class Listener: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 1) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard listening else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}

/// A helper program (Prometheus) running beside the test, killed at the end.
final class ChildProcess: Sendable {
    private let process: Process

    init(_ executable: String, _ arguments: [String], log: URL) throws {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
    }

    func terminate() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}
