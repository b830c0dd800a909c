/// Settings for a group consumer. Offsets are never committed automatically:
/// the caller commits what it has finished.
public struct KafkaConsumerConfiguration: Sendable, Hashable {
    /// Where to start when the group has no committed offset for a partition.
    public enum AutoOffsetReset: String, Sendable, Hashable, CaseIterable, Codable {
        case earliest, latest, error
    }

    /// How partitions are split among the group's members.
    public enum AssignmentStrategy: String, Sendable, Hashable, CaseIterable, Codable {
        case range
        case roundRobin = "roundrobin"
        /// Incremental rebalancing: members keep the partitions that do not move.
        case cooperativeSticky = "cooperative-sticky"
    }

    /// Brokers, identity and security.
    public var connection: KafkaConnection
    /// The consumer group.
    public var groupID: String
    /// How long the group waits for a silent member before evicting it.
    public var sessionTimeout: Duration
    /// How long the broker may hold an idle fetch.
    public var fetchWaitMax: Duration
    /// How long the application may go between polls before it leaves the group.
    public var maxPollInterval: Duration
    /// Where to start without a committed offset.
    public var autoOffsetReset: AutoOffsetReset
    /// Partition assignment strategy.
    public var assignmentStrategy: AssignmentStrategy
    /// How long a revocation waits for the rebalance handler to finish and commit.
    public var revocationTimeout: Duration
    /// librdkafka's prefetch: it fetches while fewer than this many messages and kilobytes
    /// wait in the consumer's queue (`queued.min.messages`, `queued.max.messages.kbytes`; the
    /// limits apply to the whole queue of a group consumer), and one fetch request returns at
    /// most `fetchMaxBytes` (`fetch.max.bytes`). A queued message keeps its whole fetch
    /// response alive, so librdkafka's defaults (100,000 messages, 64 MB, 50 MB responses
    /// from each broker) let a consumer reach hundreds of MB. Once the queue is over either
    /// limit, librdkafka stops fetching for up to a second; ``KafkaConsumer/pump(timeout:next:deliver:)``
    /// wakes the fetchers when its queue falls to half the message limit, so the queue need
    /// not hold a second's worth: 40,000 messages is about 0.2 s of a no-op drain here, and
    /// keeps its peak RSS under 150 MB (127-147 MB measured). `kafka.properties` overrides all three.
    public var prefetchMessages = 40_000
    public var prefetchKilobytes = 32_768
    public var fetchMaxBytes = 8 * 1024 * 1024
    /// How often librdkafka reports its statistics (`statistics.interval.ms`), read by
    /// ``KafkaConsumer/statistics`` (per-partition lag without a network round trip);
    /// zero turns them off. `kafka.properties` overrides it.
    public var statisticsInterval: Duration = .seconds(5)

    /// Creates consumer settings; every argument but the group has a default.
    public init(
        connection: KafkaConnection = KafkaConnection(), groupID: String,
        sessionTimeout: Duration = .seconds(45), fetchWaitMax: Duration = .milliseconds(500),
        maxPollInterval: Duration = .seconds(300), autoOffsetReset: AutoOffsetReset = .earliest,
        assignmentStrategy: AssignmentStrategy = .cooperativeSticky, revocationTimeout: Duration = .seconds(15)
    ) {
        self.connection = connection
        self.groupID = groupID
        self.sessionTimeout = sessionTimeout
        self.fetchWaitMax = fetchWaitMax
        self.maxPollInterval = maxPollInterval
        self.autoOffsetReset = autoOffsetReset
        self.assignmentStrategy = assignmentStrategy
        self.revocationTimeout = revocationTimeout
    }

    /// Properties that make the service, not librdkafka, own offset storage and commits.
    static let ownedByService: [String: String] = [
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
    ]

    var propertyList: KafkaPropertyList {
        let role: [(String, String)] = [
            ("group.id", groupID),
            ("session.timeout.ms", String(sessionTimeout.clampedMilliseconds)),
            ("fetch.wait.max.ms", String(fetchWaitMax.clampedMilliseconds)),
            ("max.poll.interval.ms", String(maxPollInterval.clampedMilliseconds)),
            ("auto.offset.reset", autoOffsetReset.rawValue),
            ("partition.assignment.strategy", assignmentStrategy.rawValue),
            ("queued.min.messages", String(prefetchMessages)),
            ("queued.max.messages.kbytes", String(prefetchKilobytes)),
            ("fetch.max.bytes", String(fetchMaxBytes)),
            ("statistics.interval.ms", String(statisticsInterval.clampedMilliseconds)),
        ]
        return KafkaPropertyList(connection, role: role, overrides: Self.ownedByService)
    }

    /// Checks every property with librdkafka without connecting.
    /// - Throws: `KafkaError.configuration` naming the rejected property.
    public func validate() throws { try propertyList.validate() }

    /// The effective librdkafka properties, secrets redacted.
    public var effectiveProperties: String { propertyList.description }
}
