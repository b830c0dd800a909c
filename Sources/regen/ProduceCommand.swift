import ArgumentParser
import Foundation
import Logging
import RdKafka
import RegenService

/// `regen produce`: send change events.
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Send change events to a topic: from a JSON-lines file (or - for stdin), or N synthetic ones.",
        discussion: """
            JSON lines are sent as they are (one record per line, keyed by their "subject" when it can \
            be read). Synthetic events cycle through --keys subjects; --malformed-ratio of them are \
            malformed on purpose (truncated JSON, unknown change_type, missing field, wrong type).
            """)

    @Option(help: "Brokers to bootstrap from, comma-separated.")
    var bootstrapServers: String = "127.0.0.1:9092"

    @Option(help: "The topic to send to.")
    var topic: String = "regen.changes"

    @Option(help: "A JSON-lines file to send, or - for standard input.")
    var file: String?

    @Option(help: "How many synthetic events to send (when no --file).")
    var count: Int = 1000

    @Option(help: "Distinct subjects among synthetic events.")
    var keys: Int = 100

    @Option(help: "Fraction of synthetic events that are malformed, in [0, 1].")
    var malformedRatio: Double = 0

    @Option(help: "Prefix of synthetic event ids.")
    var idPrefix: String = "evt"

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be >= 0, got \(count)") }
        guard keys >= 1 else { throw ValidationError("--keys must be >= 1, got \(keys)") }
        guard (0...1).contains(malformedRatio) else { throw ValidationError("--malformed-ratio must be in [0, 1], got \(malformedRatio)") }
    }

    func run() async throws {
        let logger = makeLogger(label: "regen.produce", level: .warning)
        let connection = KafkaConnection(bootstrapServers: bootstrapServers.split(separator: ",").map(String.init), clientID: "regen-produce")
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(connection: connection), logger: logger)
        let sent: Int
        if let file {
            sent = try await sendLines(from: file, with: producer)
        } else {
            let generator = ChangeEventGenerator(keys: keys, malformedRatio: malformedRatio, idPrefix: idPrefix)
            try await generator.send(0..<count, to: topic, with: producer)
            sent = count
        }
        try await producer.close()
        print("sent \(sent) records to \(topic)")
    }

    private func sendLines(from path: String, with producer: KafkaProducer) async throws -> Int {
        var sent = 0
        for line in try Self.lines(of: path) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let value = Array(line.utf8)
            let subject = (try? JSONSerialization.jsonObject(with: Data(value)) as? [String: Any])?["subject"] as? String
            try await producer.send(topic: topic, key: subject.map { Array($0.utf8) }, value: value)
            sent += 1
        }
        return sent
    }

    /// The lines of `path`, or of standard input for `-`.
    private static func lines(of path: String) throws -> [String] {
        if path == "-" { return Array(sequence(state: ()) { _ in readLine() }) }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read --file '\(path)'")
        }
        return text.split(whereSeparator: \.isNewline).map(String.init)
    }
}
