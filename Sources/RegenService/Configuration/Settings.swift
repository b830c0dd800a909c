import Foundation
import Orchestration
import RdKafka
import Regeneration

/// Kafka connection and consumption settings.
public struct KafkaSettings: Sendable, Codable, Hashable {
    /// Brokers to bootstrap from (a list, or one comma-separated string).
    public var bootstrapServers: [String] = ["127.0.0.1:9092"]
    /// The consumer group; instances with the same group split the partitions.
    public var groupId = "regen"
    /// Client id reported to brokers.
    public var clientId = "regen"
    /// Input topics of change events.
    public var inputTopics: [String] = ["regen.changes"]
    /// `session.timeout.ms`.
    public var sessionTimeoutMs = 45_000
    /// `fetch.wait.max.ms`.
    public var fetchWaitMaxMs = 500
    /// `max.poll.interval.ms`.
    public var maxPollIntervalMs = 300_000
    /// `earliest`, `latest` or `error`.
    public var autoOffsetReset = KafkaConsumerConfiguration.AutoOffsetReset.earliest
    /// `range`, `roundrobin` or `cooperative-sticky`.
    public var assignmentStrategy = KafkaConsumerConfiguration.AssignmentStrategy.cooperativeSticky
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    public var securityProtocol = KafkaConnection.SecurityProtocol.plaintext
    /// SASL mechanism, when a `sasl_*` protocol is used.
    public var saslMechanism: String?
    /// SASL user name.
    public var saslUsername: String?
    /// SASL password (never printed). Prefer `saslPasswordFile`.
    public var saslPassword: String?
    /// A file holding the SASL password, read at start (a trailing newline is dropped).
    public var saslPasswordFile: String?
    /// CA bundle for TLS.
    public var sslCaLocation: String?
    /// Client certificate (PEM), for mutual TLS.
    public var sslCertificateLocation: String?
    /// Client private key (PEM), for mutual TLS.
    public var sslKeyLocation: String?
    /// The private key's password (never printed). Prefer `sslKeyPasswordFile`.
    public var sslKeyPassword: String?
    /// A file holding the private key's password, read at start.
    public var sslKeyPasswordFile: String?
    /// Whether the broker's certificate must name the host regen connected to
    /// (`ssl.endpoint.identification.algorithm=https`); `false` only for test clusters.
    public var sslEndpointIdentification = true
    /// Any other librdkafka property, for every client.
    public var properties: [String: String] = [:]
    /// Brokers for telemetry and alerts, when they live on another cluster (default: `bootstrapServers`).
    public var telemetryBootstrapServers: [String]?

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = KafkaSettings()
        bootstrapServers = try c.list(.bootstrapServers, or: d.bootstrapServers)
        groupId = try c.value(.groupId, or: d.groupId)
        clientId = try c.value(.clientId, or: d.clientId)
        inputTopics = try c.list(.inputTopics, or: d.inputTopics)
        sessionTimeoutMs = try c.value(.sessionTimeoutMs, or: d.sessionTimeoutMs)
        fetchWaitMaxMs = try c.value(.fetchWaitMaxMs, or: d.fetchWaitMaxMs)
        maxPollIntervalMs = try c.value(.maxPollIntervalMs, or: d.maxPollIntervalMs)
        autoOffsetReset = try c.value(.autoOffsetReset, or: d.autoOffsetReset)
        assignmentStrategy = try c.value(.assignmentStrategy, or: d.assignmentStrategy)
        securityProtocol = try c.value(.securityProtocol, or: d.securityProtocol)
        saslMechanism = try c.decodeIfPresent(String.self, forKey: .saslMechanism)
        saslUsername = try c.decodeIfPresent(String.self, forKey: .saslUsername)
        saslPassword = try c.decodeIfPresent(String.self, forKey: .saslPassword)
        saslPasswordFile = try c.decodeIfPresent(String.self, forKey: .saslPasswordFile)
        sslCaLocation = try c.decodeIfPresent(String.self, forKey: .sslCaLocation)
        sslCertificateLocation = try c.decodeIfPresent(String.self, forKey: .sslCertificateLocation)
        sslKeyLocation = try c.decodeIfPresent(String.self, forKey: .sslKeyLocation)
        sslKeyPassword = try c.decodeIfPresent(String.self, forKey: .sslKeyPassword)
        sslKeyPasswordFile = try c.decodeIfPresent(String.self, forKey: .sslKeyPasswordFile)
        sslEndpointIdentification = try c.value(.sslEndpointIdentification, or: d.sslEndpointIdentification)
        properties = try c.value(.properties, or: d.properties)
        telemetryBootstrapServers = c.contains(.telemetryBootstrapServers) ? try c.list(.telemetryBootstrapServers, or: []) : nil
    }

    /// The connection these settings describe (after ``readSecretFiles()``).
    public var connection: KafkaConnection {
        let files = [sslCaLocation, sslCertificateLocation, sslKeyLocation, sslKeyPassword]
        var properties = self.properties
        if securityProtocol == .ssl || securityProtocol == .saslSSL, properties["ssl.endpoint.identification.algorithm"] == nil {
            properties["ssl.endpoint.identification.algorithm"] = sslEndpointIdentification ? "https" : "none"
        }
        return KafkaConnection(
            bootstrapServers: bootstrapServers, clientID: clientId, securityProtocol: securityProtocol,
            sasl: saslMechanism.map { .init(mechanism: $0, username: saslUsername, password: saslPassword) },
            tls: files.contains { $0 != nil }
                ? .init(
                    caLocation: sslCaLocation, certificateLocation: sslCertificateLocation, keyLocation: sslKeyLocation,
                    keyPassword: sslKeyPassword)
                : nil,
            properties: properties)
    }

    /// Reads `saslPasswordFile` and `sslKeyPasswordFile` into the secrets they hold.
    /// - Returns: warnings: a secret file that its group or others can read.
    /// - Throws: `ConfigurationErrors` naming the field when a file cannot be read, or when
    ///   both a secret and its file are given.
    mutating func readSecretFiles() throws -> [String] {
        var problems = ConfigurationChecker()
        var warnings: [String] = []
        func read(_ file: String?, into secret: inout String?, field: String, secretField: String) {
            guard let file else { return }
            guard secret == nil else {
                problems.require(false, "kafka.\(field)", file, "not both kafka.\(secretField) and kafka.\(field): the file alone")
                return
            }
            guard let data = FileManager.default.contents(atPath: file), var text = String(data: data, encoding: .utf8) else {
                problems.require(false, "kafka.\(field)", file, "a readable UTF-8 file holding the secret")
                return
            }
            if text.hasSuffix("\n") { text.removeLast() }  // "\r\n" is one Character
            secret = text
            var status = stat()
            if stat(file, &status) == 0, status.st_mode & 0o077 != 0 {
                warnings.append(
                    "kafka.\(field): \(file) can be read by its group or others (mode \(String(status.st_mode & 0o777, radix: 8))); "
                        + "chmod 600 it")
            }
        }
        read(saslPasswordFile, into: &saslPassword, field: "saslPasswordFile", secretField: "saslPassword")
        read(sslKeyPasswordFile, into: &sslKeyPassword, field: "sslKeyPasswordFile", secretField: "sslKeyPassword")
        guard problems.errors.isEmpty else { throw ConfigurationErrors(errors: problems.errors) }
        return warnings
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        p.require(!bootstrapServers.isEmpty, "kafka.bootstrapServers", bootstrapServers, "at least one host:port")
        p.require(!groupId.isEmpty, "kafka.groupId", groupId, "a non-empty group id")
        p.require(!inputTopics.isEmpty, "kafka.inputTopics", inputTopics, "at least one topic")
        p.require(sessionTimeoutMs >= 1000, "kafka.sessionTimeoutMs", sessionTimeoutMs, "an integer >= 1000")
        p.require(fetchWaitMaxMs >= 0, "kafka.fetchWaitMaxMs", fetchWaitMaxMs, "an integer >= 0")
        p.require(maxPollIntervalMs >= 1000, "kafka.maxPollIntervalMs", maxPollIntervalMs, "an integer >= 1000")
        return p.errors
    }
}

/// Output topics.
public struct OutputTopics: Sendable, Codable, Hashable {
    /// Every telemetry event.
    public var telemetry = "regen.telemetry"
    /// Warnings and alerts (also on the telemetry topic).
    public var alerts = "regen.alerts"
    /// Dead letters.
    public var deadLetter = "regen.dlq"

    /// Creates the default topic names.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OutputTopics()
        telemetry = try c.value(.telemetry, or: d.telemetry)
        alerts = try c.value(.alerts, or: d.alerts)
        deadLetter = try c.value(.deadLetter, or: d.deadLetter)
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        for (field, name) in [("topics.telemetry", telemetry), ("topics.alerts", alerts), ("topics.deadLetter", deadLetter)] {
            p.require(!name.isEmpty, field, name, "a non-empty topic name")
        }
        return p.errors
    }
}

/// Service behaviour.
public struct ServiceSettings: Sendable, Codable, Hashable {
    /// The name of this instance in telemetry; defaults to host name and process id.
    public var instance: String?
    /// How long a revocation waits for the cycle in flight, in milliseconds.
    public var revocationTimeoutMs = 15_000
    /// How long a graceful shutdown may take before in-flight work is abandoned, in milliseconds.
    public var shutdownTimeoutMs = 30_000
    /// Telemetry events buffered while the telemetry broker is slow or away.
    public var telemetryBuffer = 10_000
    /// Cycles that may run at once, sharing `orchestrator.concurrency`: while one runs, the
    /// next is already cut and started when its keys do not overlap, so the slots the first
    /// one's slowest keys leave idle are used. With 1, cycles run one after another (the
    /// next one is still fetched meanwhile, and starts while the last one's commit is in flight).
    public var cyclesInFlight = 2
    /// Cycles whose commit may be outstanding beside those in flight: new cycles wait while
    /// more work than (`cyclesInFlight` + this) cycles is done or running but not committed,
    /// which is the most a crash (or a revocation whose commit is refused) processes again.
    public static let commitBacklogCycles = 1

    /// The most records a crash makes regen process again: (`cyclesInFlight` +
    /// ``commitBacklogCycles``) × `maxEvents`.
    public func duplicatesBound(maxEvents: Int) -> Int { (cyclesInFlight + Self.commitBacklogCycles) * maxEvents }
    /// Records fetched but not yet in a cycle, at most this many bytes (keys, values,
    /// headers, and each value once more for the event decoded from it); fetching stops
    /// above it. Records are also capped at 4 cycles' worth.
    public var bufferMaxBytes = 32 * 1024 * 1024
    /// The HTTP endpoints: probes, metrics, stats.
    public var http = HTTPSettings()
    /// How `regen run` writes its log: `text` (the default) or `json`, one object per
    /// line; `--log-format` overrides it.
    public var logFormat = LogFormat.text

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ServiceSettings()
        instance = try c.decodeIfPresent(String.self, forKey: .instance)
        revocationTimeoutMs = try c.value(.revocationTimeoutMs, or: d.revocationTimeoutMs)
        shutdownTimeoutMs = try c.value(.shutdownTimeoutMs, or: d.shutdownTimeoutMs)
        telemetryBuffer = try c.value(.telemetryBuffer, or: d.telemetryBuffer)
        cyclesInFlight = try c.value(.cyclesInFlight, or: d.cyclesInFlight)
        bufferMaxBytes = try c.value(.bufferMaxBytes, or: d.bufferMaxBytes)
        http = try c.value(.http, or: d.http)
        logFormat = try c.value(.logFormat, or: d.logFormat)
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        p.require(revocationTimeoutMs >= 2000, "service.revocationTimeoutMs", revocationTimeoutMs, "an integer >= 2000")
        p.require(shutdownTimeoutMs >= 1000, "service.shutdownTimeoutMs", shutdownTimeoutMs, "an integer >= 1000")
        p.require(telemetryBuffer >= 1, "service.telemetryBuffer", telemetryBuffer, "an integer >= 1")
        p.require((1...16).contains(cyclesInFlight), "service.cyclesInFlight", cyclesInFlight, "an integer from 1 to 16")
        p.require(bufferMaxBytes >= 1 << 20, "service.bufferMaxBytes", bufferMaxBytes, "an integer >= 1048576 (bytes)")
        return p.errors + http.problems()
    }
}

/// The HTTP server of `regen run`: `/healthz`, `/readyz`, `/metrics`, `/stats`.
public struct HTTPSettings: Sendable, Codable, Hashable {
    /// Whether to serve at all.
    public var enabled = true
    /// `host:port` to listen on; loopback by default (metrics and stats are for the
    /// machine's own scraper unless you say otherwise). Port 0 takes any free port.
    public var address = "127.0.0.1:9464"
    /// `/healthz` fails when work has waited this long, in milliseconds, without a cycle finishing.
    public var stuckAfterMs = 300_000
    /// `/readyz` fails when offset commits have failed for this long, in milliseconds.
    public var commitsFailingAfterMs = 60_000

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = HTTPSettings()
        enabled = try c.value(.enabled, or: d.enabled)
        address = try c.value(.address, or: d.address)
        stuckAfterMs = try c.value(.stuckAfterMs, or: d.stuckAfterMs)
        commitsFailingAfterMs = try c.value(.commitsFailingAfterMs, or: d.commitsFailingAfterMs)
    }

    /// The host and port of ``address``; nil when it is not `host:port` with a port from 0 to 65535.
    public var hostAndPort: (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }  // [::1]:9464
        guard !host.isEmpty, let port = Int(address[address.index(after: colon)...]), (0...65_535).contains(port) else { return nil }
        return (host, port)
    }

    /// Whether ``address`` is a loopback address, reachable from this machine only.
    public var isLoopback: Bool {
        guard let host = hostAndPort?.host else { return false }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        p.require(hostAndPort != nil, "service.http.address", address, "host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464 (port 0 to 65535)")
        p.require(stuckAfterMs >= 1000, "service.http.stuckAfterMs", stuckAfterMs, "an integer >= 1000")
        p.require(commitsFailingAfterMs >= 1000, "service.http.commitsFailingAfterMs", commitsFailingAfterMs, "an integer >= 1000")
        return p.errors
    }
}

/// The processor doing the work.
public struct ProcessorSettings: Sendable, Codable, Hashable {
    /// The processor types.
    public static let types = ["template", "command", "simulate"]

    /// Which processor: `template`, `command` or `simulate`.
    public var type = "simulate"
    /// Settings of the `simulate` processor.
    public var simulate = SimulateSettings()
    /// Settings of the `template` processor.
    public var template = TemplateSettings()
    /// Settings of the `command` processor.
    public var command = CommandSettings()

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.value(.type, or: "simulate")
        simulate = try c.value(.simulate, or: SimulateSettings())
        template = try c.value(.template, or: TemplateSettings())
        command = try c.value(.command, or: CommandSettings())
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        p.require(Self.types.contains(type), "processor.type", type, "one of: \(Self.types.joined(separator: ", "))")
        switch type {
        case "simulate": return p.errors + simulate.problems()
        case "template": return p.errors + template.problems()
        case "command": return p.errors + command.problems()
        default: return p.errors
        }
    }
}

/// Settings of the `simulate` processor.
public struct SimulateSettings: Sendable, Codable, Hashable {
    /// `none`, `sleep` or `cpu`.
    public var work = "none"
    /// Sleep per event, for `work: sleep`, in milliseconds.
    public var sleepMs = 1
    /// For `work: sleep`, add to each event's sleep a uniform draw in `[0, sleepJitterMs]`
    /// milliseconds, drawn from the event id and `seed` (the same in every run).
    public var sleepJitterMs = 0
    /// Seed of the jitter draws.
    public var seed = 0
    /// Hashing rounds per event, for `work: cpu`.
    public var cpuIterations = 1000
    /// Fraction of attempts that fail (retriably), in [0, 1].
    public var failureRate = 0.0
    /// Fail every attempt while this file exists (to simulate an outage and recovery).
    public var failWhileFileExists: String?
    /// Append each processed event id to this file before the event counts as done.
    public var ledger: String?
    /// Write each ledger line as the id, a tab, and the wall-clock time in microseconds since 1970.
    public var ledgerTimestamps = false
    /// Every Nth offset hangs for `hangMs` on its first attempt (a slow downstream); 0 = never.
    public var hangEvery = 0
    /// How long such an attempt hangs, in milliseconds (cancelled by `orchestrator.eventTimeoutMs`).
    public var hangMs = 0

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SimulateSettings()
        work = try c.value(.work, or: d.work)
        sleepMs = try c.value(.sleepMs, or: d.sleepMs)
        sleepJitterMs = try c.value(.sleepJitterMs, or: d.sleepJitterMs)
        seed = try c.value(.seed, or: d.seed)
        cpuIterations = try c.value(.cpuIterations, or: d.cpuIterations)
        failureRate = try c.value(.failureRate, or: d.failureRate)
        failWhileFileExists = try c.decodeIfPresent(String.self, forKey: .failWhileFileExists)
        ledger = try c.decodeIfPresent(String.self, forKey: .ledger)
        ledgerTimestamps = try c.value(.ledgerTimestamps, or: d.ledgerTimestamps)
        hangEvery = try c.value(.hangEvery, or: d.hangEvery)
        hangMs = try c.value(.hangMs, or: d.hangMs)
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        p.require(["none", "sleep", "cpu"].contains(work), "processor.simulate.work", work, "one of: none, sleep, cpu")
        p.require(sleepMs >= 0, "processor.simulate.sleepMs", sleepMs, "an integer >= 0")
        p.require(sleepJitterMs >= 0, "processor.simulate.sleepJitterMs", sleepJitterMs, "an integer >= 0")
        p.require(cpuIterations >= 0, "processor.simulate.cpuIterations", cpuIterations, "an integer >= 0")
        p.require((0...1).contains(failureRate), "processor.simulate.failureRate", failureRate, "a number in [0, 1]")
        p.require(hangEvery >= 0, "processor.simulate.hangEvery", hangEvery, "an integer >= 0 (0 = never)")
        p.require(hangMs >= 0, "processor.simulate.hangMs", hangMs, "an integer >= 0")
        return p.errors
    }
}

/// Settings of the `template` processor.
public struct TemplateSettings: Sendable, Codable, Hashable {
    /// The templates directory (`manifest.yaml` and `*.mustache`).
    public var templates = "templates"
    /// Where artifacts are deployed.
    public var output = "output"
    /// `fsync`: a cycle is done only once its artifacts and state are on disk; `none`: not.
    public var durability = "fsync"

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        templates = try c.value(.templates, or: "templates")
        output = try c.value(.output, or: "output")
        durability = try c.value(.durability, or: "fsync")
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        var isDirectory: ObjCBool = false
        p.require(
            FileManager.default.fileExists(atPath: templates, isDirectory: &isDirectory) && isDirectory.boolValue,
            "processor.template.templates", templates, "an existing directory with manifest.yaml and *.mustache templates")
        p.require(!output.isEmpty, "processor.template.output", output, "a directory path")
        p.require(
            Durability(rawValue: durability) != nil, "processor.template.durability", durability,
            "one of: \(Durability.allCases.map(\.rawValue).joined(separator: ", "))")
        return p.errors
    }
}

/// Settings of the `command` processor.
public struct CommandSettings: Sendable, Codable, Hashable {
    /// The program to run (no shell).
    public var executable = ""
    /// Its fixed arguments.
    public var arguments: [String] = []
    /// How long one run may take, in milliseconds.
    public var timeoutMs = 30_000
    /// Variables set in the command's environment.
    public var environment: [String: String] = [:]
    /// Names of regen's environment variables the command gets too (never `REGEN_*`).
    public var inheritEnvironment: [String] = []
    /// How much of the end of a failed run's standard error goes into its reason (the log
    /// line and the dead letter's `regen.error`), in bytes; 0 keeps none.
    public var stderrTailBytes = 4096

    /// Creates default settings.
    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        executable = try c.value(.executable, or: "")
        arguments = try c.value(.arguments, or: [])
        timeoutMs = try c.value(.timeoutMs, or: 30_000)
        environment = try c.value(.environment, or: [:])
        inheritEnvironment = try c.value(.inheritEnvironment, or: [])
        stderrTailBytes = try c.value(.stderrTailBytes, or: 4096)
    }

    func problems() -> [ConfigurationError] {
        var p = ConfigurationChecker()
        p.require(
            FileManager.default.isExecutableFile(atPath: executable), "processor.command.executable", executable,
            "the path of an executable file")
        p.require(timeoutMs >= 1, "processor.command.timeoutMs", timeoutMs, "an integer >= 1")
        p.require((0...65_536).contains(stderrTailBytes), "processor.command.stderrTailBytes", stderrTailBytes, "an integer from 0 to 65536")
        let allowed = "variable names not starting with REGEN_ (regen's own variables, which may hold secrets, never reach the command)"
        for name in inheritEnvironment.sorted() where !CommandProcessor.isPassable(name) {
            p.require(false, "processor.command.inheritEnvironment", name, allowed)
        }
        for name in environment.keys.sorted() where !CommandProcessor.isPassable(name) {
            p.require(false, "processor.command.environment", name, allowed)
        }
        return p.errors
    }
}
