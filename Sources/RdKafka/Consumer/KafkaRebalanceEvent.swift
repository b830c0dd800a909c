/// A change of the partitions a group consumer owns.
public enum KafkaRebalanceEvent: Sendable, Hashable {
    /// These partitions are now this consumer's; fetching starts when the handler returns.
    case assigned([TopicPartition])
    /// These partitions are being given up. They are still owned while the handler runs,
    /// so it can finish their work and commit; they are released when it returns (or
    /// when `revocationTimeout` passes).
    case revoked([TopicPartition])
    /// These partitions were taken away (session lost, fenced): another member may already
    /// own them, so nothing may be committed for them.
    case lost([TopicPartition])

    /// The partitions the event is about.
    public var partitions: [TopicPartition] {
        switch self {
        case .assigned(let partitions), .revoked(let partitions), .lost(let partitions): partitions
        }
    }
}

/// Called for every rebalance, before partitions are given up.
public typealias KafkaRebalanceHandler = @Sendable (KafkaRebalanceEvent) async -> Void
