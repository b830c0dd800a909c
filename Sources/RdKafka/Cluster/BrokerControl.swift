import Foundation

/// A control command for an ``EmbeddedCluster`` run as a process of its own (`regen broker`,
/// `regen-bench broker`), one per line on standard input.
public enum BrokerControl: Equatable, Sendable {
    case down(broker: Int)
    case up(broker: Int)
    case roundTripTime(broker: Int, milliseconds: Int)
    case errors(api: KafkaAPIKey, codes: [KafkaResponseCode])
    case clearErrors(api: KafkaAPIKey)
    case topic(name: String, partitions: Int)
    case leader(TopicPartition, broker: Int)

    public static let usage = """
        down N | up N | rtt N MS | errors API CODE[,CODE...] | clear API | topic NAME PARTITIONS | leader TOPIC PARTITION N
        (API: \(KafkaAPIKey.allCases.map(\.description).joined(separator: ", ")); CODE: a librdkafka error name such as REQUEST_TIMED_OUT)
        """

    /// Parses one line.
    /// - Throws: a message naming what is wrong and what is allowed.
    public init(parsing line: String) throws(BrokerControlError) {
        let words = line.split(separator: " ").map(String.init)
        func int(_ index: Int) throws(BrokerControlError) -> Int {
            guard index < words.count, let value = Int(words[index]) else {
                throw BrokerControlError("'\(line)': expected a number at position \(index + 1)")
            }
            return value
        }
        func api(_ index: Int) throws(BrokerControlError) -> KafkaAPIKey {
            guard index < words.count, let api = KafkaAPIKey(name: words[index]) else {
                throw BrokerControlError("'\(line)': unknown API; one of \(KafkaAPIKey.allCases.map(\.description).joined(separator: ", "))")
            }
            return api
        }
        switch words.first?.lowercased() {
        case "down": self = .down(broker: try int(1))
        case "up": self = .up(broker: try int(1))
        case "rtt": self = .roundTripTime(broker: try int(1), milliseconds: try int(2))
        case "errors":
            let names = words.count > 2 ? words[2].split(separator: ",").map(String.init) : []
            let codes = names.compactMap(KafkaResponseCode.init(name:))
            guard !names.isEmpty, codes.count == names.count else {
                throw BrokerControlError("'\(line)': expected librdkafka error names, e.g. REQUEST_TIMED_OUT,NOT_COORDINATOR")
            }
            self = .errors(api: try api(1), codes: codes)
        case "clear": self = .clearErrors(api: try api(1))
        case "topic":
            guard words.count > 1 else { throw BrokerControlError("'\(line)': expected topic NAME PARTITIONS") }
            self = .topic(name: words[1], partitions: try int(2))
        case "leader":
            guard words.count > 1 else { throw BrokerControlError("'\(line)': expected leader TOPIC PARTITION BROKER") }
            self = .leader(TopicPartition(topic: words[1], partition: try int(2)), broker: try int(3))
        default:
            throw BrokerControlError("unknown command '\(line)'; commands: \(Self.usage)")
        }
    }

    /// Applies the command to `cluster`.
    /// - Throws: `KafkaError` when the cluster refuses it.
    public func apply(to cluster: EmbeddedCluster) async throws {
        switch self {
        case .down(let broker): try await cluster.takeDown(broker: broker)
        case .up(let broker): try await cluster.bringUp(broker: broker)
        case .roundTripTime(let broker, let milliseconds): try await cluster.setRoundTripTime(broker: broker, .milliseconds(milliseconds))
        case .errors(let api, let codes): try await cluster.injectErrors(codes, for: api)
        case .clearErrors(let api): try await cluster.clearErrors(for: api)
        case .topic(let name, let partitions): try await cluster.createTopic(name, partitions: partitions)
        case .leader(let partition, let broker): try await cluster.setLeader(partition, broker: broker)
        }
    }
}

/// A control line that could not be understood.
public struct BrokerControlError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension EmbeddedCluster {
    /// Reads control commands (``BrokerControl``) from standard input on a thread of its
    /// own (reading blocks), applies each, and answers `ok` or `error: ...` on standard
    /// output. Returns at the end of the input.
    public func serveControlCommands() async {
        await withCheckedContinuation { (ended: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                serveControlCommandsUntilEOF()
                ended.resume()
            }
        }
    }

    private func serveControlCommandsUntilEOF() {
        while let line = readLine() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            let done = DispatchSemaphore(value: 0)
            let reply = ReplyBox()
            Task {
                do {
                    try await BrokerControl(parsing: trimmed).apply(to: self)
                    reply.text = "ok"
                } catch {
                    reply.text = "error: \(error)"
                }
                done.signal()
            }
            done.wait()
            FileHandle.standardOutput.write(Data((reply.text + "\n").utf8))
        }
    }
}

/// Carries a reply from the applying task to the reading thread (ordered by the semaphore).
private final class ReplyBox: @unchecked Sendable {
    var text = ""
}
