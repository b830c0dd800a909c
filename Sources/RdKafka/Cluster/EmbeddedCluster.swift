internal import CRdKafka
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// An in-process Kafka cluster (librdkafka's mock cluster): real Kafka protocol over
/// TCP on 127.0.0.1, several brokers, consumer groups, idempotent producers, and fault
/// injection. For the demo and the tests; it keeps data in memory (about 5 MB per
/// partition, older data is dropped) and serves metadata up to v2 only.
public final class EmbeddedCluster: KafkaTopicAdministration {
    private let handle: KafkaHandle
    private let cluster: MockCluster
    private let context: ClientContext
    private let thread = KafkaThread(name: "kafka-mock")

    /// The brokers' ids, 1 through the broker count.
    public let brokerIDs: [Int]
    /// The `host:port,...` list clients bootstrap from.
    public let bootstrapServers: String

    /// Starts `brokers` brokers listening on ephemeral loopback ports.
    /// - Throws: `KafkaError` when librdkafka cannot start the cluster.
    public init(brokers: Int = 3, logger: Logger) throws {
        guard brokers > 0 else { throw KafkaError.invalidArgument("brokers must be > 0, got \(brokers)") }
        let context = ClientContext(logger: logger)
        self.context = context
        var properties = KafkaPropertyList(KafkaConnection(bootstrapServers: []), role: [], overrides: [:])
        properties.set("test.mock.num.brokers", String(brokers))
        let pointer = try Self.withSignalsBlocked { try context.makeHandle(RD_KAFKA_PRODUCER, properties) }
        guard let cluster = rd_kafka_handle_mock_cluster(pointer) else {
            rd_kafka_destroy(pointer)
            throw KafkaError.invalidArgument("librdkafka did not create a mock cluster")
        }
        handle = KafkaHandle(pointer: pointer)
        self.cluster = MockCluster(pointer: cluster)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        brokerIDs = Array(1...brokers)
    }

    /// Runs `body` with every signal blocked in this thread. librdkafka 2.0.2 starts the
    /// mock cluster's thread before it blocks signals for its other threads, so that thread
    /// takes this one's mask; a signal with a handler that reaches it (Swift's pool threads
    /// leave SIGPROF, SIGPIPE and the fault signals open; seen in a test process while the
    /// Swift runtime was writing a crash backtrace) interrupts its `poll`, which it takes as
    /// fatal: the cluster stops answering for good.
    private static func withSignalsBlocked<T>(_ body: () throws -> T) rethrows -> T {
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }

    deinit {
        // Destroying blocks (it stops the brokers): done on the cluster's own thread, never on
        // the caller's, which may be a cooperative one. The context outlives the handle.
        thread.execute { [handle, context] in
            withExtendedLifetime(context) { rd_kafka_destroy(handle.pointer) }  // and the mock cluster it owns
        }
        thread.stop()
    }

    /// A connection to this cluster.
    public func connection(clientID: String = "regen") -> KafkaConnection {
        KafkaConnection(bootstrapServers: bootstrapServers.split(separator: ",").map(String.init), clientID: clientID)
    }

    /// Creates `topic` through the mock API (the mock broker has no CreateTopics).
    /// Creating a topic that exists succeeds and leaves it as it is.
    public func createTopic(_ topic: String, partitions: Int, replicationFactor: Int = 1) async throws {
        guard partitions > 0 else { throw KafkaError.invalidArgument("partitions must be > 0, got \(partitions)") }
        try await control("create topic \(topic)") { cluster in
            rd_kafka_mock_topic_create(cluster, topic, Int32(partitions), Int32(replicationFactor))
        }
    }

    /// Disconnects broker `id` and refuses new connections (leadership does not move).
    public func takeDown(broker id: Int) async throws {
        try await control("take down broker \(id)") { rd_kafka_mock_broker_set_down($0, Int32(id)) }
    }

    /// Lets broker `id` accept connections again.
    public func bringUp(broker id: Int) async throws {
        try await control("bring up broker \(id)") { rd_kafka_mock_broker_set_up($0, Int32(id)) }
    }

    /// Delays every response of broker `id` by `rtt`.
    public func setRoundTripTime(broker id: Int, _ rtt: Duration) async throws {
        try await control("set rtt of broker \(id)") { rd_kafka_mock_broker_set_rtt($0, Int32(id), rtt.clampedMilliseconds) }
    }

    /// Moves the leadership of `partition` to broker `id`.
    public func setLeader(_ partition: TopicPartition, broker id: Int) async throws {
        try await control("set leader of \(partition)") {
            rd_kafka_mock_partition_set_leader($0, partition.topic, Int32(partition.partition), Int32(id))
        }
    }

    /// Makes the next `errors.count` requests of `api` fail with these codes, in order.
    public func injectErrors(_ errors: [KafkaResponseCode], for api: KafkaAPIKey) async throws {
        try await control("inject errors") { cluster in
            let codes = errors.map(\.cValue)
            rd_kafka_mock_push_request_errors_array(cluster, api.rawValue, codes.count, codes)
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Drops errors still queued for `api`.
    public func clearErrors(for api: KafkaAPIKey) async throws {
        try await control("clear errors") { cluster in
            rd_kafka_mock_clear_request_errors(cluster, api.rawValue)
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    /// Mock calls wait for the mock cluster's thread to apply them, so they run on ours.
    private func control(
        _ what: String, _ body: @escaping @Sendable (OpaquePointer) -> rd_kafka_resp_err_t
    ) async throws {
        try await thread.run("embedded cluster") { [cluster] in
            let code = KafkaResponseCode(body(cluster.pointer))
            guard code == .noError || code == .topicAlreadyExists else {
                throw KafkaError.librdkafka(code, context: what)
            }
        }
    }
}

/// `@unchecked Sendable`: mock cluster calls are thread-safe (each posts an operation
/// to the cluster's own thread and waits for it).
private struct MockCluster: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// A Kafka protocol request type, for fault injection.
public struct KafkaAPIKey: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The protocol's ApiKey number.
    public let rawValue: Int16
    /// Creates a key from its protocol number.
    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let produce = Self(rawValue: 0)
    public static let fetch = Self(rawValue: 1)
    public static let listOffsets = Self(rawValue: 2)
    public static let metadata = Self(rawValue: 3)
    public static let offsetCommit = Self(rawValue: 8)
    public static let offsetFetch = Self(rawValue: 9)
    public static let findCoordinator = Self(rawValue: 10)
    public static let joinGroup = Self(rawValue: 11)
    public static let heartbeat = Self(rawValue: 12)
    public static let leaveGroup = Self(rawValue: 13)
    public static let syncGroup = Self(rawValue: 14)
    public static let initProducerID = Self(rawValue: 22)

    public static let allCases: [Self] = [
        .produce, .fetch, .listOffsets, .metadata, .offsetCommit, .offsetFetch, .findCoordinator, .joinGroup,
        .heartbeat, .leaveGroup, .syncGroup, .initProducerID,
    ]

    private static let names: [Int16: String] = [
        0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
        10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
        22: "InitProducerId",
    ]

    /// The protocol name, such as `OffsetCommit`.
    public var description: String { Self.names[rawValue] ?? "ApiKey(\(rawValue))" }

    /// The key named `name` (case-insensitive protocol name, e.g. `offsetcommit`).
    public init?(name: String) {
        guard let match = Self.names.first(where: { $0.value.lowercased() == name.lowercased() }) else { return nil }
        self.init(rawValue: match.key)
    }
}
