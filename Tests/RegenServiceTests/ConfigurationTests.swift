import Foundation
import Orchestration
import RegenService
import Testing

@Suite("Service configuration and CLI", .timeLimit(.minutes(3)))
struct ServiceConfigurationTests {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("regen-\(UUID().uuidString.prefix(8)).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("File, then REGEN_ environment, then --set: later layers win")
    func layering() throws {
        let path = try file("""
            kafka: { bootstrapServers: "a:9092", groupId: from-file }
            orchestrator: { concurrency: 3, retry: { maxAttempts: 4 } }
            """)
        let loader = ConfigurationLoader(environment: [
            "REGEN_KAFKA__GROUP_ID": "from-env", "REGEN_ORCHESTRATOR__RETRY__MAX_ATTEMPTS": "7",
            "REGEN_KAFKA__BOOTSTRAP_SERVERS": "b:9092,c:9092", "HOME": "/root",
        ])
        let configuration = try loader.load(file: path, overrides: ["orchestrator.concurrency=5"])
        #expect(configuration.kafka.groupId == "from-env")
        #expect(configuration.kafka.bootstrapServers == ["b:9092", "c:9092"])
        #expect(configuration.orchestrator.retry.maxAttempts == 7)
        #expect(configuration.orchestrator.concurrency == 5)
        #expect(configuration.orchestrator.retry.initialBackoffMs == 100, "unset keys keep their defaults")
    }

    @Test("Invalid values are refused naming every field at fault")
    func invalidValues() throws {
        let path = try file("""
            kafka: { sessionTimeoutMs: 10, inputTopics: [] }
            orchestrator: { concurrency: 0 }
            processor: { type: teleport }
            """)
        let error = #expect(throws: ConfigurationErrors.self) { try ConfigurationLoader(environment: [:]).load(file: path) }
        let fields = Set(error?.errors.map(\.field) ?? [])
        #expect(fields == ["kafka.sessionTimeoutMs", "kafka.inputTopics", "orchestrator.concurrency", "processor.type"])
        #expect(error?.description.contains("processor.type = teleport is not allowed: must be one of: template, command, simulate") == true)
    }

    @Test("The template processor's durability is fsync unless set to none; anything else is refused, naming the field")
    func templateDurability() throws {
        let templates = FileManager.default.temporaryDirectory.appendingPathComponent("regen-cfg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: templates, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: templates) }
        let loader = ConfigurationLoader(environment: [:])
        let byDefault = try loader.load(file: file("processor: { type: template, template: { templates: \(templates) } }"))
        #expect(byDefault.processor.template.durability == "fsync")
        let none = try loader.load(file: file("processor: { type: template, template: { templates: \(templates), durability: none } }"))
        #expect(none.processor.template.durability == "none")
        let error = #expect(throws: ConfigurationErrors.self) {
            try loader.load(file: file("processor: { type: template, template: { templates: \(templates), durability: sometimes } }"))
        }
        #expect(error?.errors.map(\.field) == ["processor.template.durability"])
        #expect(error?.description.contains("must be one of: fsync, none") == true, "\(String(describing: error))")
    }

    @Test("The command processor's environment settings refuse regen's own variables, naming the field")
    func commandEnvironment() throws {
        let path = try file("""
            processor:
              type: command
              command:
                executable: /bin/sh
                inheritEnvironment: [SHARED_CA, REGEN_KAFKA__SASL_PASSWORD]
                environment: { MODE: render, REGEN_EVENT_TOPIC: forged }
            """)
        let error = #expect(throws: ConfigurationErrors.self) { try ConfigurationLoader(environment: [:]).load(file: path) }
        #expect(error?.errors.map(\.field) == ["processor.command.inheritEnvironment", "processor.command.environment"])
        #expect(error?.errors.map(\.value) == ["REGEN_KAFKA__SASL_PASSWORD", "REGEN_EVENT_TOPIC"])
        let fine = try file("""
            processor:
              type: command
              command: { executable: /bin/sh, inheritEnvironment: [SHARED_CA], environment: { MODE: render } }
            """)
        let configuration = try ConfigurationLoader(environment: [:]).load(file: fine)
        #expect(configuration.processor.command.inheritEnvironment == ["SHARED_CA"])
        #expect(configuration.processor.command.environment == ["MODE": "render"])
        let printed = try configuration.redactedJSON()
        #expect(printed.contains("SHARED_CA") && printed.contains("MODE") && !printed.contains("render"), "the variables' values are redacted")
    }

    @Test("A wrongly typed value and an unknown librdkafka property are named")
    func typesAndLibrdkafka() throws {
        let typed = #expect(throws: ConfigurationLoader.LoadError.self) {
            try ConfigurationLoader(environment: [:]).load(file: nil, overrides: ["orchestrator.retry.maxAttempts=many"])
        }
        #expect(typed?.description.contains("orchestrator.retry.maxAttempts") == true)
        let property = #expect(throws: ConfigurationErrors.self) {
            try ConfigurationLoader(environment: [:]).load(file: nil, overrides: ["kafka.properties.fetch.wait.maxx.ms=5"])
        }
        #expect(property?.errors.first?.field.contains("kafka.properties") == true)
    }

    @Test("Secrets are redacted in the printed configuration")
    func redaction() throws {
        let configuration = try ConfigurationLoader(environment: ["REGEN_KAFKA__SASL_PASSWORD": "hunter2"])
            .load(file: nil, overrides: ["kafka.saslUsername=svc", "kafka.properties.ssl.key.password=s3cr3t"])
        let text = try configuration.redactedJSON()
        #expect(!text.contains("hunter2") && !text.contains("s3cr3t"))
        #expect(text.contains(#""svc""#) && text.contains("[redacted]"))
    }

    @Test("Secrets from files: read at start, redacted when printed, a warning when others can read them, errors naming the field")
    func secretFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regen-secrets-\(UUID().uuidString.prefix(8)))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let password = directory.appendingPathComponent("sasl").path
        let keyPassword = directory.appendingPathComponent("key").path
        try "hunter2\n".write(toFile: password, atomically: true, encoding: .utf8)
        try "s3cr3t".write(toFile: keyPassword, atomically: true, encoding: .utf8)
        #expect(chmod(password, 0o600) == 0 && chmod(keyPassword, 0o644) == 0)
        let loader = ConfigurationLoader(environment: ["REGEN_KAFKA__SASL_PASSWORD_FILE": password])
        let configuration = try loader.load(
            file: nil, overrides: ["kafka.saslMechanism=PLAIN", "kafka.saslUsername=svc", "kafka.sslKeyPasswordFile=\(keyPassword)"])
        #expect(configuration.kafka.saslPassword == "hunter2" && configuration.kafka.sslKeyPassword == "s3cr3t")
        #expect(configuration.kafka.connection.sasl?.password == "hunter2" && configuration.kafka.connection.tls?.keyPassword == "s3cr3t")
        let text = try configuration.redactedJSON()
        #expect(!text.contains("hunter2") && !text.contains("s3cr3t") && text.contains("regen-secrets-"), "the file names are shown: \(text)")
        #expect(configuration.warnings.count == 1 && configuration.warnings.first?.contains("kafka.sslKeyPasswordFile") == true)
        #expect(configuration.warnings.first?.contains("644") == true, "\(configuration.warnings)")

        let missing = #expect(throws: ConfigurationErrors.self) {
            try loader.load(file: nil, overrides: ["kafka.sslKeyPasswordFile=\(directory.path)/none"])
        }
        #expect(missing?.errors.map(\.field) == ["kafka.sslKeyPasswordFile"])
        let both = #expect(throws: ConfigurationErrors.self) { try loader.load(file: nil, overrides: ["kafka.saslPassword=inline"]) }
        #expect(both?.errors.map(\.field) == ["kafka.saslPasswordFile"])
    }

    @Test("TLS for managed Kafka: CA, client certificate and key reach librdkafka; the broker's host name is checked unless turned off")
    func tlsSettings() throws {
        let loader = ConfigurationLoader(environment: [:])
        let tls = try loader.load(
            file: file(
                """
                kafka:
                  securityProtocol: ssl
                  sslCaLocation: /etc/regen/ca.pem
                  sslCertificateLocation: /etc/regen/client.pem
                  sslKeyLocation: /etc/regen/client.key
                """))
        let properties = tls.consumerConfiguration().effectiveProperties
        for expected in [
            "security.protocol=ssl", "ssl.ca.location=/etc/regen/ca.pem", "ssl.certificate.location=/etc/regen/client.pem",
            "ssl.key.location=/etc/regen/client.key", "ssl.endpoint.identification.algorithm=https",
        ] { #expect(properties.contains(expected), "\(expected) in \(properties)") }
        let unchecked = try loader.load(file: nil, overrides: ["kafka.securityProtocol=sasl_ssl", "kafka.sslEndpointIdentification=false"])
        #expect(unchecked.consumerConfiguration().effectiveProperties.contains("ssl.endpoint.identification.algorithm=none"))
        let plain = try loader.load(file: nil)
        #expect(!plain.consumerConfiguration().effectiveProperties.contains("ssl."))
    }

    @Test("regen exits 2 for usage and configuration errors, 0 for a valid check")
    func exitCodes() async throws {
        let bad = try file("orchestrator: { concurrency: -1 }")
        let good = try file("kafka: { groupId: g }")
        for (arguments, expected) in [(["config", "check", bad], Int32(2)), (["run", "--no-such-flag"], 2), (["config", "check", good], 0)] {
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("regen-cli-\(UUID().uuidString.prefix(6)).log")
            let process = try RegenProcess(arguments: arguments, log: log)
            #expect(await process.waitForExit() == expected, "\(arguments): \(process.output)")
            if expected == 2 && arguments[0] == "config" { #expect(process.output.contains("orchestrator.concurrency = -1")) }
        }
    }
}
