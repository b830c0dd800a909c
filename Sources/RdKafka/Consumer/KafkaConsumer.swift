internal import CRdKafka
import Logging
import Synchronization

/// A group consumer. Blocking librdkafka calls run on two dedicated threads, never on
/// the cooperative pool: one polls (and so runs rebalance callbacks), the other runs
/// control calls (commit, seek, pause, offsets), so a revocation handler can commit
/// while the poll thread waits for it.
///
/// Offsets are never committed automatically. Call ``close()`` before dropping the
/// consumer: it leaves the group cleanly, giving the rebalance handler a last revoke.
public final class KafkaConsumer: Sendable {
    private enum Phase: Sendable { case open, closing, closed }

    private let handle: KafkaHandle
    /// The consumer queue, kept to wake a blocked poll (`rd_kafka_yield` does not reach
    /// `rd_kafka_consumer_poll` on librdkafka 2.0).
    private let queue: KafkaHandle
    private let context: ClientContext
    private let coordinator: RebalanceCoordinator
    private let pollThread = KafkaThread(name: "kafka-poll")
    private let controlThread = KafkaThread(name: "kafka-control")
    /// Sends the requests that wake librdkafka's fetchers (see ``Refill``).
    private let refillThread = KafkaThread(name: "kafka-refill")
    private let refill: Refill
    private let phase = Mutex(Phase.open)
    private let logger: Logger
    private let revocationTimeout: Duration

    /// Creates a consumer; it joins the group on ``subscribe(_:)``.
    /// - Throws: `KafkaError.configuration` naming a rejected property.
    public init(
        configuration: KafkaConsumerConfiguration, logger: Logger,
        rebalanceHandler: KafkaRebalanceHandler? = nil
    ) throws {
        self.logger = logger
        let properties = configuration.propertyList
        coordinator = RebalanceCoordinator(
            handler: rebalanceHandler, revocationTimeout: configuration.revocationTimeout,
            cooperative: properties.value("partition.assignment.strategy")?.contains("cooperative-sticky") == true,
            logger: logger)
        revocationTimeout = configuration.revocationTimeout
        refill = Refill(threshold: properties.value("queued.min.messages").flatMap(Int.init) ?? 100_000)
        context = ClientContext(logger: logger, rebalance: coordinator)
        let pointer = try context.makeHandle(RD_KAFKA_CONSUMER, properties)
        rd_kafka_poll_set_consumer(pointer)
        handle = KafkaHandle(pointer: pointer)
        queue = KafkaHandle(pointer: rd_kafka_queue_get_consumer(pointer))
    }

    deinit {
        guard phase.withLock({ $0 }) != .closed else { return }
        logger.warning("consumer dropped without close(); closing on its poll thread")
        // Closing blocks: done on the poll thread, never on the caller's. No job of this
        // consumer is queued any more (each holds the consumer), so nothing runs after it.
        pollThread.execute { [handle, queue, context, coordinator, logger] in
            withExtendedLifetime(context) {
                rd_kafka_queue_destroy(queue.pointer)
                rd_kafka_consumer_close(handle.pointer)
                Self.destroy(handle.pointer, context, coordinator, logger)
            }
        }
        pollThread.stop()
        controlThread.stop()
        refillThread.stop()
    }

    /// Runs `body` on `thread` if the consumer is in one of `phases`; the check and the
    /// enqueue are atomic with ``close()``'s phase changes, so no job outlives the handle.
    private func perform<T: Sendable>(
        on thread: KafkaThread, in phases: [Phase] = [.open, .closing],
        _ body: @escaping @Sendable (OpaquePointer) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let queued = phase.withLock { phase in
                phases.contains(phase)
                    && thread.execute { [self] in continuation.resume(with: Result { try body(handle.pointer) }) }
            }
            if !queued { continuation.resume(throwing: KafkaError.closed("consumer")) }
        }
    }

    /// What librdkafka last reported in its statistics (every `statistics.interval.ms`,
    /// 5 s by default): cached watermarks, committed offsets and lag per partition. No
    /// network round trip; nil until the first report.
    public var statistics: KafkaStatistics? { context.statistics }

    /// The fatal error librdkafka raised, if any: the consumer is then unusable.
    public var fatalError: KafkaError? { context.fatalError }

    /// Joins the group and subscribes to `topics`.
    /// - Throws: `KafkaError` when librdkafka rejects the subscription.
    public func subscribe(_ topics: [String]) async throws {
        guard !topics.isEmpty else { throw KafkaError.invalidArgument("subscribe needs at least one topic") }
        try await perform(on: controlThread, in: [.open]) { handle in
            let list = PartitionList(topics.map { TopicPartition(topic: $0, partition: -1) })
            let err = rd_kafka_subscribe(handle, list.pointer)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.librdkafka(KafkaResponseCode(err), context: "subscribe \(topics)")
            }
        }
    }

    /// Receives up to `maxMessages` messages, waiting at most `timeout` in all.
    /// Rebalance handlers run during this call. Returns early once `maxMessages` arrived,
    /// or when ``wakeUp()`` is called.
    /// - Throws: `KafkaError` when the consumer is closed or hit a fatal error.
    public func poll(maxMessages: Int, timeout: Duration) async throws -> [KafkaMessage] {
        guard maxMessages > 0 else { throw KafkaError.invalidArgument("maxMessages must be > 0, got \(maxMessages)") }
        return try await perform(on: pollThread, in: [.open]) { [context] handle in
            try Self.pollBatch(handle, context: context, maxMessages: maxMessages, timeout: timeout, untilIdle: false)
        }
    }

    /// Polls batch after batch on the poll thread until `next` returns nil or the consumer
    /// closes, handing each batch to `deliver` there: a consumer that keeps up with the
    /// broker, with no hop through the cooperative pool between a batch and the next.
    ///
    /// Each poll waits at most `timeout` for its first message, then takes what librdkafka
    /// has already queued, up to the number `next` returned, and ends as soon as the queue
    /// is empty (or at ``wakeUp()``). Rebalance handlers run during the polls. `next` and
    /// `deliver` run on the poll thread and must not wait for the caller: `next` may block
    /// for a short while (to wait for room), which delays rebalance handlers as long.
    /// - Throws: `KafkaError` when the consumer is closed or hit a fatal error.
    public func pump(
        timeout: Duration, next: @escaping @Sendable () -> Int?, deliver: @escaping @Sendable ([KafkaMessage]) -> Void
    ) async throws {
        try await perform(on: pollThread, in: [.open]) { [self, context] handle in
            while let limit = next() {
                guard phase.withLock({ $0 == .open }) else { throw KafkaError.closed("consumer") }
                let messages = try Self.pollBatch(handle, context: context, maxMessages: max(limit, 1), timeout: timeout, untilIdle: true)
                if refill.observe(queued: Int(rd_kafka_queue_length(queue.pointer))) { wakeFetchers() }
                if !messages.isEmpty { deliver(messages) }
            }
        }
    }

    /// Wakes librdkafka's fetchers (its broker threads) when the queue runs low after it was
    /// full. Before librdkafka 2.2, a broker thread that found the consumer's queue at
    /// `queued.min.messages` stops fetching and sleeps until a request of its own, a network
    /// answer or a whole second passes; nothing the consumer does wakes it. A consumer
    /// faster than about that many messages a second then finds the queue empty for the
    /// rest of the second, every second. librdkafka has no call to wake them, but any request
    /// does: a ListOffsets for the owned partitions goes to each of their leaders (answered
    /// at once; the answer is ignored), and the fetchers refill the queue while it still
    /// holds half. librdkafka 2.2's `fetch.queue.backoff.ms` does not make this unneeded:
    /// its default is the same second.
    final class Refill: Sendable {
        /// `queued.min.messages`.
        let threshold: Int
        /// Whether the queue reached the threshold since the last refill.
        private let armed = Atomic(false)
        /// Whether a refill request is in progress.
        let inFlight = Atomic(false)

        init(threshold: Int) { self.threshold = threshold }

        /// Notes the queue's length after a poll; true when the fetchers should be woken.
        func observe(queued: Int) -> Bool {
            if queued >= threshold {
                armed.store(true, ordering: .relaxed)
                return false
            }
            return queued < threshold / 2 && armed.exchange(false, ordering: .relaxed)
        }
    }

    /// Sends a ListOffsets request to the leader of every owned partition, on a thread of its
    /// own so the poll goes on meanwhile (see ``Refill``). One at a time.
    private func wakeFetchers() {
        guard !refill.inFlight.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let queued = refillThread.execute { [self] in
            defer { refill.inFlight.store(false, ordering: .releasing) }
            let owned = coordinator.assignment
            guard !owned.isEmpty, phase.withLock({ $0 == .open }) else { return }
            // Offsets for timestamp -1: each partition's end. Only the requests matter.
            let list = PartitionList(owned.map { TopicPartitionOffset($0, offset: -1) })
            _ = rd_kafka_offsets_for_times(handle.pointer, list.pointer, 1000)
        }
        if !queued { refill.inFlight.store(false, ordering: .releasing) }
    }

    private static func pollBatch(
        _ handle: OpaquePointer, context: ClientContext, maxMessages: Int, timeout: Duration, untilIdle: Bool
    ) throws -> [KafkaMessage] {
        let deadline = ContinuousClock.now + timeout
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(min(maxMessages, 4096))
        // Rebalance callbacks run inside rd_kafka_consumer_poll. When one gave partitions up,
        // what this batch gathered of them before is stale: after a loss, the partition can
        // come back and be fetched again from its committed offset, into this same batch.
        let rebalance = context.rebalance
        var generation = rebalance?.givenUpGeneration ?? 0
        func dropGivenUp() {
            guard let rebalance, rebalance.givenUpGeneration != generation else { return }
            let gone: Set<TopicPartition>?
            (generation, gone) = rebalance.givenUp(since: generation)
            messages.removeAll { gone?.contains($0.topicPartition) ?? true }
        }
        while messages.count < maxMessages {
            let remaining = untilIdle && !messages.isEmpty ? 0 : (deadline - .now).clampedMilliseconds
            // nil: the deadline passed, or wakeUp() interrupted the wait.
            let polled = rd_kafka_consumer_poll(handle, remaining)
            dropGivenUp()
            guard let message = polled else { break }
            defer { rd_kafka_message_destroy(message) }
            let err = message.pointee.err
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                messages.append(KafkaMessage(message))
            } else {
                try handlePollError(handle, err, message, context: context)
            }
        }
        if let fatal = context.fatalError { throw fatal }
        return messages
    }

    private static func handlePollError(
        _ handle: OpaquePointer, _ err: rd_kafka_resp_err_t, _ message: UnsafeMutablePointer<rd_kafka_message_t>,
        context: ClientContext
    ) throws {
        if err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return }
        if err == RD_KAFKA_RESP_ERR__FATAL {
            context.recordFatal(handle)
            throw context.fatalError ?? KafkaError.librdkafka(KafkaResponseCode(err), isFatal: true)
        }
        let detail = rd_kafka_message_errstr(message).map { String(cString: $0) } ?? ""
        context.logger.warning("consumer error", metadata: ["code": "\(KafkaResponseCode(err).name)", "detail": "\(detail)"])
    }

    /// Makes a ``poll(maxMessages:timeout:)`` in progress (or the next one) return at
    /// once with what it has. Non-blocking; callable from any task.
    public func wakeUp() {
        phase.withLock { phase in
            if phase != .closed { rd_kafka_queue_yield(queue.pointer) }
        }
    }

    /// The partitions this consumer owns. Revoked partitions stay owned until the
    /// rebalance handler returns.
    public var assignment: Set<TopicPartition> { coordinator.assignment }

    /// Whether commits are held because this member is inside a rebalance (see ``commit(_:)``).
    public var isRebalancing: Bool { coordinator.commitsHeld }

    /// Commits `offsets` (each the offset of the *next* message to consume) synchronously.
    /// Refuses, committing nothing, if any partition is not owned by this consumer, and
    /// while this member is inside a rebalance (after the broker refused a commit for
    /// rebalancing, or after a revoke, until the rebalance's assignment): a commit sent
    /// while the member rejoins would make librdkafka 2.0 declare the assignment lost.
    /// With cooperative-sticky, a rebalance handler handling `.revoked` may commit: its
    /// generation is still current.
    /// - Throws: `KafkaError.notAssigned`; `.librdkafka` with `REBALANCE_IN_PROGRESS`
    ///   (retriable) while held; or the broker's error for the request or any single
    ///   partition. A thrown commit is never partly reported as success.
    public func commit(_ offsets: [TopicPartitionOffset]) async throws {
        guard !offsets.isEmpty else { return }
        try await perform(on: controlThread) { [coordinator] handle in
            let owned = coordinator.assignment
            let foreign = offsets.map(\.topicPartition).filter { !owned.contains($0) }
            guard foreign.isEmpty else { throw KafkaError.notAssigned(foreign) }
            guard !coordinator.commitsHeld else {
                throw KafkaError.librdkafka(.rebalanceInProgress, context: "commit held until this member's rebalance completes")
            }
            try Self.commitSync(handle, offsets) { err in
                if err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS { coordinator.commitRefusedForRebalance() }
            }
        }
    }

    /// `rd_kafka_commit`, synchronously; `refused` sees the request's error before it is thrown.
    /// - Throws: the broker's error for the request or any single partition.
    private static func commitSync(
        _ handle: OpaquePointer, _ offsets: [TopicPartitionOffset], refused: (rd_kafka_resp_err_t) -> Void = { _ in }
    ) throws {
        let list = PartitionList(offsets)
        let err = rd_kafka_commit(handle, list.pointer, 0)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            refused(err)
            throw KafkaError.librdkafka(KafkaResponseCode(err), context: "commit \(offsets)")
        }
        if let failed = list.elements.first(where: { $0.error != .noError }) {
            throw KafkaError.librdkafka(failed.error, context: "commit \(failed.position)")
        }
    }

    /// Commits `offsets` for the group without joining it, as an offset-reset tool does:
    /// for a consumer that never subscribed. The broker accepts it only while the group has
    /// no members (otherwise `UNKNOWN_MEMBER_ID` or `ILLEGAL_GENERATION`).
    /// - Throws: `KafkaError.invalidArgument` once this consumer subscribed; the broker's
    ///   error for the request or any single partition.
    public func commitAsOutsider(_ offsets: [TopicPartitionOffset]) async throws {
        guard !offsets.isEmpty else { return }
        try await perform(on: controlThread, in: [.open]) { handle in
            var subscription: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
            _ = rd_kafka_subscription(handle, &subscription)
            let subscribed = (subscription?.pointee.cnt ?? 0) > 0
            if let subscription { rd_kafka_topic_partition_list_destroy(subscription) }
            guard !subscribed else { throw KafkaError.invalidArgument("commitAsOutsider is for a consumer that never subscribed") }
            try Self.commitSync(handle, offsets)
        }
    }

    /// The group's committed offsets for `partitions`; `TopicPartitionOffset.invalidOffset` where none.
    /// - Throws: `KafkaError` when the coordinator does not answer within `timeout`.
    public func committed(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) async throws
        -> [TopicPartitionOffset]
    {
        try await perform(on: controlThread) { handle in
            let list = PartitionList(partitions)
            let err = rd_kafka_committed(handle, list.pointer, timeout.clampedMilliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.librdkafka(KafkaResponseCode(err), context: "committed offsets")
            }
            return list.elements.map(\.position)
        }
    }

    /// The low and high watermarks of a partition, asked of its leader.
    /// - Throws: `KafkaError` when the leader does not answer within `timeout`.
    public func watermarks(of partition: TopicPartition, timeout: Duration = .seconds(10)) async throws
        -> (low: Int64, high: Int64)
    {
        try await perform(on: controlThread) { handle in
            var low: Int64 = 0
            var high: Int64 = 0
            let err = rd_kafka_query_watermark_offsets(
                handle, partition.topic, Int32(partition.partition), &low, &high, timeout.clampedMilliseconds)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.librdkafka(KafkaResponseCode(err), context: "watermarks of \(partition)")
            }
            return (low, high)
        }
    }

    /// Stops fetching from `partitions` (owned ones) until ``resume(_:)``, or until they
    /// are assigned again after a rebalance: newly assigned partitions always fetch.
    /// - Throws: `KafkaError.notAssigned` or librdkafka's per-partition error.
    public func pause(_ partitions: [TopicPartition]) async throws {
        try await setPaused(partitions, paused: true)
    }

    /// Resumes fetching from `partitions`.
    /// - Throws: `KafkaError.notAssigned` or librdkafka's per-partition error.
    public func resume(_ partitions: [TopicPartition]) async throws {
        try await setPaused(partitions, paused: false)
    }

    private func setPaused(_ partitions: [TopicPartition], paused: Bool) async throws {
        guard !partitions.isEmpty else { return }
        try await perform(on: controlThread) { [coordinator] handle in
            try Self.requireOwned(partitions, coordinator)
            let list = PartitionList(partitions)
            let err = paused ? rd_kafka_pause_partitions(handle, list.pointer) : rd_kafka_resume_partitions(handle, list.pointer)
            let failure = err != RD_KAFKA_RESP_ERR_NO_ERROR
                ? KafkaResponseCode(err) : list.elements.first { $0.error != .noError }?.error
            if let failure { throw KafkaError.librdkafka(failure, context: paused ? "pause" : "resume") }
        }
    }

    /// Moves the fetch position of owned partitions, so the next poll reads from `positions`.
    /// - Throws: `KafkaError.notAssigned` or librdkafka's error.
    public func seek(_ positions: [TopicPartitionOffset], timeout: Duration = .seconds(10)) async throws {
        guard !positions.isEmpty else { return }
        try await perform(on: controlThread) { [coordinator] handle in
            try Self.requireOwned(positions.map(\.topicPartition), coordinator)
            let list = PartitionList(positions)
            if let error = rd_kafka_seek_partitions(handle, list.pointer, timeout.clampedMilliseconds) {
                throw KafkaError.consuming(error, context: "seek")
            }
            if let failed = list.elements.first(where: { $0.error != .noError }) {
                throw KafkaError.librdkafka(failed.error, context: "seek \(failed.position)")
            }
        }
    }

    private static func requireOwned(_ partitions: [TopicPartition], _ coordinator: RebalanceCoordinator) throws {
        let owned = coordinator.assignment
        let foreign = partitions.filter { !owned.contains($0) }
        guard foreign.isEmpty else { throw KafkaError.notAssigned(foreign) }
    }

    /// Leaves the group cleanly: the rebalance handler gets a last `revoked` (and may
    /// commit), then the client is destroyed. Safe to call more than once.
    /// - Throws: `KafkaError` when librdkafka reports an error while closing.
    public func close() async throws {
        guard phase.withLock({ phase in
            guard phase == .open else { return false }
            phase = .closing
            return true
        }) else { return }
        wakeUp()  // a pump() in progress ends, and the close queued behind it runs
        let closeError: KafkaError? = try await perform(on: pollThread, in: [.closing]) {
            [coordinator, revocationTimeout] handle in
            Self.releaseAssignment(handle, coordinator, within: revocationTimeout + .seconds(5))
            let err = rd_kafka_consumer_close(handle)
            return err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError.librdkafka(KafkaResponseCode(err), context: "close")
        }
        try await drainAndDestroy()
        if let closeError { throw closeError }
    }

    /// Unsubscribes and polls until the revoke has run, so `rd_kafka_consumer_close`
    /// finds nothing to unassign: librdkafka 2.0 can hang when a close has to run an
    /// (incremental) unassign in the rebalance callback (librdkafka issues #4527, #4884).
    /// Messages fetched meanwhile are dropped uncommitted, so they are read again.
    private static func releaseAssignment(
        _ handle: OpaquePointer, _ coordinator: RebalanceCoordinator, within limit: Duration
    ) {
        rd_kafka_unsubscribe(handle)
        let deadline = ContinuousClock.now + limit
        while !coordinator.assignment.isEmpty && ContinuousClock.now < deadline {
            if let message = rd_kafka_consumer_poll(handle, 50) { rd_kafka_message_destroy(message) }
        }
    }

    /// Lets queued control calls finish, then destroys the handle on the poll thread.
    private func drainAndDestroy() async throws {
        phase.withLock { $0 = .closed }
        try await controlThread.run("consumer") {}
        controlThread.stop()
        try await refillThread.run("consumer") {}
        refillThread.stop()
        try await pollThread.run("consumer") { [handle, queue, context, coordinator, logger] in
            rd_kafka_queue_destroy(queue.pointer)
            Self.destroy(handle.pointer, context, coordinator, logger)
        }
        pollThread.stop()
    }

    /// Destroys a closed handle, except where librdkafka would abort: before 2.3, destroying
    /// a cooperative-sticky consumer that joined its group but never got an assignment fails
    /// an assertion (librdkafka #4312; Debian 12 ships 2.0.2). Such a handle has already
    /// left the group; it is kept, with the context its callbacks use, costing memory and
    /// idle threads until the process ends.
    private static func destroy(
        _ handle: OpaquePointer, _ context: ClientContext, _ coordinator: RebalanceCoordinator, _ logger: Logger
    ) {
        if coordinator.cooperative && !coordinator.hasBeenAssigned && rd_kafka_version() < Self.stickyDestroyFixed {
            logger.notice("consumer closed before its first assignment; its handle is not destroyed (librdkafka #4312)")
            _ = Unmanaged.passRetained(context)
            return
        }
        rd_kafka_destroy(handle)
    }

    /// librdkafka 2.3.0, the first release that destroys such a consumer safely.
    private static let stickyDestroyFixed: Int32 = 0x0203_00ff
}
