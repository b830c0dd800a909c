internal import CRdKafka
import Dispatch
import Logging
import Synchronization

/// Handles librdkafka's rebalance callback: keeps the set of owned partitions, applies
/// eager or cooperative (incremental) assignment, and lets the Swift handler run to
/// completion before revoked partitions are released.
final class RebalanceCoordinator: Sendable {
    private let handler: KafkaRebalanceHandler?
    private let revocationTimeout: Duration
    let cooperative: Bool
    private let logger: Logger
    private let owned = Mutex<Set<TopicPartition>>([])
    private let hold = Mutex(CommitHold())
    private let assignedOnce = Atomic(false)
    private let givenUp = Mutex(GivenUp())
    /// `givenUp`'s generation, readable without the lock: a poll checks it after every message.
    private let givenUpCount = Atomic<UInt64>(0)

    /// The partitions given up (revoked or lost), numbered, so that a batch of records
    /// gathered across several polls can drop what it holds of them: records fetched
    /// before a partition was given up must not sit beside the ones fetched after.
    struct GivenUp {
        var generation: UInt64 = 0
        var recent: [(generation: UInt64, partitions: Set<TopicPartition>)] = []
        static let kept = 64

        mutating func record(_ partitions: Set<TopicPartition>) {
            generation += 1
            recent.append((generation, partitions))
            if recent.count > Self.kept { recent.removeFirst(recent.count - Self.kept) }
        }

        /// The partitions given up after `generation`, or nil if that is too long ago to say.
        func since(_ generation: UInt64) -> Set<TopicPartition>? {
            guard generation < self.generation else { return [] }
            guard let oldest = recent.first, oldest.generation <= generation + 1 else { return nil }
            return recent.filter { $0.generation > generation }.reduce(into: []) { $0.formUnion($1.partitions) }
        }
    }

    /// When commits must not be sent: while this member is inside a rebalance. A commit
    /// sent while it rejoins carries the old generation; the broker answers
    /// ILLEGAL_GENERATION and librdkafka 2.0 then declares the whole assignment lost.
    /// The cooperative revoke callback is the exception: it runs after this round's
    /// SyncGroup, so its generation is current, and it is the last chance to commit the
    /// work done on the partitions it gives up. (An eager revoke runs while the group is
    /// joining; there a held commit stays held, as it was before this exception existed.)
    struct CommitHold {
        /// Assign callbacks still to come before the rebalance is over.
        var assignsToWait = 0
        var since = ContinuousClock.now
        /// Inside a cooperative revoke callback (while its handler runs).
        var revoking = false

        /// A hold that outlives this is released anyway, in case a round never completes.
        static let limit = Duration.seconds(60)

        var isHeld: Bool { !revoking && assignsToWait > 0 && ContinuousClock.now - since < Self.limit }

        mutating func wait(forAssigns count: Int) {
            if !isHeld { since = .now }
            assignsToWait = max(isHeld ? assignsToWait : 0, count)
        }
    }

    /// `cooperative` comes from the configured strategy: asking librdkafka with
    /// `rd_kafka_rebalance_protocol` inside the callback can hang after close (librdkafka #4041).
    init(handler: KafkaRebalanceHandler?, revocationTimeout: Duration, cooperative: Bool, logger: Logger) {
        self.handler = handler
        self.revocationTimeout = revocationTimeout
        self.cooperative = cooperative
        self.logger = logger
    }

    /// The partitions this consumer owns right now (revoked ones until their handler returns).
    var assignment: Set<TopicPartition> { owned.withLock { $0 } }

    /// Whether this member has received an assignment (possibly empty) since it was created.
    var hasBeenAssigned: Bool { assignedOnce.load(ordering: .acquiring) }

    /// How many times partitions have been given up so far.
    var givenUpGeneration: UInt64 { givenUpCount.load(ordering: .acquiring) }

    /// The generation now, and the partitions given up since `generation` (nil when that
    /// cannot be told any more).
    func givenUp(since generation: UInt64) -> (generation: UInt64, partitions: Set<TopicPartition>?) {
        givenUp.withLock { ($0.generation, $0.since(generation)) }
    }

    /// Whether commits are held because this member is inside a rebalance.
    var commitsHeld: Bool { hold.withLock { $0.isHeld } }

    /// The broker refused a commit because the group is rebalancing: hold commits until
    /// this member's next assignment.
    func commitRefusedForRebalance() { hold.withLock { $0.wait(forAssigns: 1) } }

    func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
    }

    /// Runs on the thread that polls (or closes) the consumer.
    func rebalance(
        _ handle: OpaquePointer, _ err: rd_kafka_resp_err_t,
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        let partitions = PartitionList.partitions(of: list)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            apply(handle, list, assign: true, cooperative: cooperative)
            // librdkafka keeps a partition's pause flag across unassign/assign; a newly
            // assigned partition must start fetching whatever its past.
            if list.pointee.cnt > 0 { _ = rd_kafka_resume_partitions(handle, list) }
            owned.withLock { $0.formUnion(partitions) }
            assignedOnce.store(true, ordering: .releasing)
            hold.withLock { $0.assignsToWait = max(0, $0.assignsToWait - 1) }
            notify(.assigned(partitions))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let generation = givenUp.withLock { givenUp in
                givenUp.record(Set(partitions))
                return givenUp.generation
            }
            givenUpCount.store(generation, ordering: .releasing)
            if rd_kafka_assignment_lost(handle) != 0 {
                owned.withLock { $0.subtract(partitions) }
                hold.withLock { $0.wait(forAssigns: 1) }
                notify(.lost(partitions))
            } else {
                hold.withLock { $0.revoking = cooperative }
                notify(.revoked(partitions))
                hold.withLock { $0.revoking = false }
                owned.withLock { $0.subtract(partitions) }
                // Eager: the join follows, then the assign. Cooperative: this round's assign,
                // then a second round gives the revoked partitions away, then its assign.
                hold.withLock { $0.wait(forAssigns: cooperative ? 2 : 1) }
            }
            apply(handle, list, assign: false, cooperative: cooperative)
        default:
            logger.error("rebalance error", metadata: ["code": "\(KafkaResponseCode(err).name)"])
            owned.withLock { $0.removeAll() }
            rd_kafka_assign(handle, nil)
        }
    }

    private func apply(
        _ handle: OpaquePointer, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
        assign: Bool, cooperative: Bool
    ) {
        if cooperative {
            let error = assign ? rd_kafka_incremental_assign(handle, list) : rd_kafka_incremental_unassign(handle, list)
            if let error {
                logger.error("incremental assignment failed", metadata: ["error": "\(KafkaError.consuming(error, context: "assign"))"])
            }
        } else {
            let err = rd_kafka_assign(handle, assign ? list : nil)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.error("assignment failed", metadata: ["code": "\(KafkaResponseCode(err).name)"])
            }
        }
    }

    /// Runs the handler and waits for it, at most `revocationTimeout`. Blocking is right
    /// here: this is a dedicated Kafka thread, and librdkafka must not proceed with the
    /// rebalance until the application has finished with the partitions.
    private func notify(_ event: KafkaRebalanceEvent) {
        logger.info("rebalance", metadata: ["event": "\(event)"])
        guard let handler else { return }
        let done = DispatchSemaphore(value: 0)
        // The one bridge from a C callback into async code; it ends when the handler does.
        Task {
            await handler(event)
            done.signal()
        }
        let nanos = UInt64(max(0, revocationTimeout.clampedMilliseconds)) * 1_000_000
        if done.wait(timeout: .now() + .nanoseconds(Int(nanos))) == .timedOut {
            logger.warning("rebalance handler did not finish in time; proceeding", metadata: ["event": "\(event)"])
        }
    }
}

private let rebalanceCallback: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?
) -> Void = { handle, err, list, opaque in
    guard let handle, let list, let coordinator = ClientContext.from(opaque)?.rebalance else { return }
    coordinator.rebalance(handle, err, list)
}
