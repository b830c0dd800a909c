import Logging
import Orchestration
import RdKafka
import Synchronization

/// The consumer loop: cuts cycles from the consumer (`maxEvents` or `maxWait`), runs
/// each through the orchestrator, and settles its offsets. While a cycle runs it keeps
/// polling, so the group never evicts this member: records fetched meanwhile wait for
/// the next cycles, and once four cycles' worth is waiting, fetching pauses (pausing
/// costs a fetch restart, so short cycles never pause).
///
/// On revoke it waits (bounded) for the cycle in flight and commits what is done for the
/// revoked partitions before they are released.
actor KafkaCycleRunner {
    private let consumer: KafkaConsumer
    private let orchestrator: RegenerationOrchestrator
    private let ledger: OffsetLedger
    private let limits: CycleLimits
    private let revocationTimeout: Duration
    private let shutdownTimeout: Duration
    private let logger: Logger
    private let stopping = StopFlag()
    private var carry: [KafkaMessage] = []
    private var paused: Set<TopicPartition> = []
    private var inFlight: Task<CycleResult, any Error>?

    init(
        consumer: KafkaConsumer, orchestrator: RegenerationOrchestrator, ledger: OffsetLedger, limits: CycleLimits,
        revocationTimeout: Duration, shutdownTimeout: Duration, logger: Logger
    ) {
        self.shutdownTimeout = shutdownTimeout
        self.consumer = consumer
        self.orchestrator = orchestrator
        self.ledger = ledger
        self.limits = limits
        self.revocationTimeout = revocationTimeout
        self.logger = logger
    }

    /// Asks the loop to finish the cycle in flight and return. Callable from anywhere.
    nonisolated func requestStop() {
        stopping.set()
        consumer.wakeUp()
    }

    /// Runs cycles until ``requestStop()``.
    /// - Throws: `KafkaError` when the consumer fails fatally or a rewind fails.
    func run() async throws {
        while !stopping.isSet {
            let start = ContinuousClock.now
            try await settlePendingCommits()
            let settled = ContinuousClock.now
            let batch = try await nextBatch()
            // A batch read after the stop request is not processed: uncommitted, it is read again.
            guard !batch.isEmpty, !stopping.isSet else { continue }
            try await runCycle(batch, waited: (pending: settled - start, batch: ContinuousClock.now - settled))
        }
        await ledger.flushPending()
        logger.info("cycle loop stopped")
    }

    /// While a commit is pending, starts no new cycle: polls with fetching paused (so the
    /// group can finish rebalancing: rebalances happen inside poll) and retries once the
    /// consumer no longer holds commits, or after a second for other errors. Ends when the
    /// commit lands, or when its partitions are revoked or lost (the ledger drops it).
    private func settlePendingCommits() async throws {
        var attempts = 0
        while ledger.hasPending && !stopping.isSet && attempts < 100 {
            if await ledger.flushPending() { break }
            attempts += 1
            try await pauseFetching()
            let until = ContinuousClock.now + .seconds(1)
            repeat {
                carry += try await consumer.poll(maxMessages: 1, timeout: .milliseconds(100))
            } while !stopping.isSet && (consumer.isRebalancing || ContinuousClock.now < until)
        }
        if ledger.hasPending && attempts >= 100 { logger.error("commits still refused after 100 attempts; they stay pending") }
        try await resumeFetching()
    }

    /// Records left over from the last keep-alive polling first, then polls until the
    /// cycle is full or `maxWait` has passed.
    private func nextBatch() async throws -> [KafkaMessage] {
        let maxEvents = limits.maxEvents
        var batch = Array(carry.prefix(maxEvents))
        carry.removeFirst(batch.count)
        let deadline = ContinuousClock.now + .milliseconds(limits.maxWaitMs)
        while batch.count < maxEvents && !stopping.isSet {
            let remaining = deadline - .now
            guard remaining > .zero else { break }
            batch += try await consumer.poll(maxMessages: maxEvents - batch.count, timeout: remaining)
        }
        return batch
    }

    /// `waited`: how long the loop spent on pending commits and on filling the batch (logged
    /// at debug level with the cycle's own phases, for profiling).
    private func runCycle(_ batch: [KafkaMessage], waited: (pending: Duration, batch: Duration)) async throws {
        let start = ContinuousClock.now
        let cycle = Cycle(records: batch.map(CycleRecord.init))
        let finished = StopFlag()
        let task = Task { [orchestrator, consumer] in
            defer {
                finished.set()
                consumer.wakeUp()
            }
            return try await orchestrator.executeCycle(cycle)
        }
        inFlight = task
        defer { inFlight = nil }
        do {
            try await keepPolling(until: finished, cancelling: task)
        } catch {
            _ = try? await task.value  // never leave the cycle running on its own
            throw error
        }
        let result = try await task.value
        let executed = ContinuousClock.now
        let rewound = try await ledger.settle(result)
        let settled = ContinuousClock.now
        let owned = consumer.assignment
        carry.removeAll { rewound.contains($0.topicPartition) || !owned.contains($0.topicPartition) }
        try await resumeFetching()
        if result.execution.done == 0 && result.execution.notDone > 0 { try await holdOff() }
        logger.debug(
            "cycle timing",
            metadata: [
                "records": "\(batch.count)", "pendingMs": "\(waited.pending.milliseconds)", "batchMs": "\(waited.batch.milliseconds)",
                "executeMs": "\((executed - start).milliseconds)", "orchestratorMs": "\(result.execution.durationMs)",
                "commitMs": "\((settled - executed).milliseconds)", "resumeMs": "\((ContinuousClock.now - settled).milliseconds)",
                "carried": "\(carry.count)", "paused": "\(paused.count)",
            ])
    }

    /// Polls while the cycle runs (rebalances are served here too); buffers what arrives.
    /// After a stop request the cycle gets `shutdownTimeout` to finish, then is cancelled:
    /// what it finished is still committed, the rest is read again.
    private func keepPolling(until finished: StopFlag, cancelling task: Task<CycleResult, any Error>) async throws {
        var stopDeadline: ContinuousClock.Instant?
        while !finished.isSet {
            if stopping.isSet {
                let deadline = stopDeadline ?? ContinuousClock.now + shutdownTimeout
                stopDeadline = deadline
                if ContinuousClock.now >= deadline {
                    logger.warning("shutdown timeout: cancelling the cycle in flight")
                    task.cancel()
                }
            }
            let room = 4 * limits.maxEvents - carry.count
            if room <= 0 { try await pauseFetching() }
            carry += try await consumer.poll(maxMessages: max(room, 1), timeout: .milliseconds(500))
        }
    }

    private func pauseFetching() async throws {
        let toPause = consumer.assignment.subtracting(paused)
        guard !toPause.isEmpty else { return }
        try await consumer.pause(Array(toPause))
        paused.formUnion(toPause)
    }

    private func resumeFetching() async throws {
        let toResume = paused.intersection(consumer.assignment)
        paused.removeAll()
        if !toResume.isEmpty { try await consumer.resume(Array(toResume)) }
    }

    /// Nothing could be done (breaker open): wait a little before reading the same
    /// records again, polling with fetching paused so the group keeps this member.
    private func holdOff() async throws {
        try await pauseFetching()
        let until = ContinuousClock.now + .milliseconds(500)
        while ContinuousClock.now < until && !stopping.isSet {
            carry += try await consumer.poll(maxMessages: 1, timeout: until - .now)
        }
        try await resumeFetching()
    }

    /// The rebalance handler: commits the in-flight cycle's work on revoked partitions
    /// (waiting for it at most the revocation timeout), and forgets their buffered records.
    func handle(_ event: KafkaRebalanceEvent) async {
        let partitions = Set(event.partitions)
        switch event {
        case .assigned:
            paused.subtract(partitions)
        case .lost:
            ledger.forget(partitions)
            forget(partitions)
        case .revoked:
            if let task = inFlight, let result = await Self.wait(for: task, atMost: revocationTimeout - .seconds(1)) {
                do {
                    try await ledger.settle(result, only: partitions)
                } catch {
                    logger.warning("rewind of revoked partitions failed", metadata: ["error": "\(error)"])
                }
            } else {
                await ledger.flushPending(partitions)
            }
            ledger.forget(partitions)
            forget(partitions)
        }
    }

    private func forget(_ partitions: Set<TopicPartition>) {
        carry.removeAll { partitions.contains($0.topicPartition) }
        paused.subtract(partitions)
    }

    /// The task's result, or nil when it fails or `limit` passes first. Returns at the
    /// limit for real: a task group would wait for its child awaiting `task.value` (which
    /// ignores cancellation) until the cycle ends, and the revoke handler would then act
    /// on partitions long since given up, and perhaps assigned to this member again.
    private static func wait(for task: Task<CycleResult, any Error>, atMost limit: Duration) async -> CycleResult? {
        let first = FirstResult<CycleResult?>()
        return await withCheckedContinuation { continuation in
            first.set(continuation)
            Task { first.resume(with: try? await task.value) }
            Task {
                try? await Task.sleep(for: max(limit, .zero))
                first.resume(with: nil)
            }
        }
    }
}

/// A continuation resumed by the first of several racers; the others change nothing.
/// The racers start after `set`.
private final class FirstResult<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<Value, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func resume(with value: Value) {
        continuation.withLock { continuation in
            defer { continuation = nil }
            return continuation
        }?.resume(returning: value)
    }
}

/// A one-way flag shared across tasks.
final class StopFlag: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
