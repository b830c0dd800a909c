import Logging
import Orchestration
import RdKafka
import Synchronization

/// Commits what a cycle finished and rewinds what it did not: per partition, the end
/// of the done prefix is committed, and the consumer seeks back to the first record
/// not done so it is read again. Partitions this instance no longer owns are skipped.
///
/// A commit that fails stays *pending*, never counted as done: it is tried again after
/// the next poll (a group that is rebalancing refuses commits until its members have
/// polled their way through the rebalance), and dropped only when its partitions are
/// revoked or lost, whose records the next owner then reads again.
final class OffsetLedger: Sendable {
    /// Commit outcomes, for the progress line and the summary.
    struct Counters: Sendable {
        var commits = 0
        var failedCommits = 0
    }

    private let consumer: KafkaConsumer
    private let logger: Logger
    private let counters = Mutex(Counters())
    private let pending = Mutex<[TopicPartition: Int64]>([:])

    init(consumer: KafkaConsumer, logger: Logger) {
        self.consumer = consumer
        self.logger = logger
    }

    var snapshot: Counters { counters.withLock { $0 } }

    /// Whether a commit is waiting to be retried.
    var hasPending: Bool { pending.withLock { !$0.isEmpty } }


    /// Commits and rewinds after a cycle, for the partitions in `only` (all when nil).
    /// - Returns: the partitions rewound.
    /// - Throws: `KafkaError` when a rewind fails: going on would read past records that
    ///   are not done, so the caller must stop (a restart resumes from the commits).
    @discardableResult
    func settle(_ result: CycleResult, only scope: Set<TopicPartition>? = nil) async throws -> Set<TopicPartition> {
        let owned = consumer.assignment
        var rewinds: [TopicPartitionOffset] = []
        for progress in result.partitions {
            let partition = TopicPartition(progress.partition)
            guard scope?.contains(partition) ?? true else { continue }
            guard owned.contains(partition) else {
                logger.info("not committing a partition no longer owned", metadata: ["partition": "\(partition)"])
                continue
            }
            if let offset = progress.commitOffset { pending.withLock { $0[partition] = max($0[partition] ?? offset, offset) } }
            if let offset = progress.firstNotDone { rewinds.append(TopicPartitionOffset(partition, offset: offset)) }
        }
        await flushPending(scope)
        try await rewind(rewinds)
        guard !rewinds.isEmpty else { return [] }
        logger.info("rewound to records not done", metadata: ["positions": "\(rewinds)"])
        return Set(rewinds.map(\.topicPartition))
    }

    /// Seeks back; a partition revoked meanwhile needs no rewind (its next owner reads from
    /// the last commit), so only a failed seek on a partition still owned is an error.
    private func rewind(_ positions: [TopicPartitionOffset]) async throws {
        var remaining = positions
        while !remaining.isEmpty {
            do {
                try await consumer.seek(remaining)
                return
            } catch let error as KafkaError where error.code == .notAssigned {
                let owned = consumer.assignment
                let before = remaining.count
                remaining.removeAll { !owned.contains($0.topicPartition) }
                if remaining.count == before { throw error }
            }
        }
    }

    /// Tries once to commit the pending offsets (of `scope`, or all) that are still owned.
    /// - Returns: whether nothing is pending for `scope` any more.
    @discardableResult
    func flushPending(_ scope: Set<TopicPartition>? = nil) async -> Bool {
        let owned = consumer.assignment
        let offsets = pending.withLock { pending -> [TopicPartitionOffset] in
            for partition in pending.keys where !owned.contains(partition) { pending[partition] = nil }
            return pending.filter { scope?.contains($0.key) ?? true }.map { TopicPartitionOffset($0.key, offset: $0.value) }
        }
        guard !offsets.isEmpty else { return true }
        guard !consumer.isRebalancing else { return false }  // the consumer would refuse it
        do {
            try await consumer.commit(offsets)
            pending.withLock { pending in
                for position in offsets where pending[position.topicPartition] == position.offset {
                    pending[position.topicPartition] = nil
                }
            }
            counters.withLock { $0.commits += 1 }
            return true
        } catch {
            counters.withLock { $0.failedCommits += 1 }
            logger.warning("commit failed; kept pending, retried after the next poll", metadata: ["offsets": "\(offsets)", "error": "\(error)"])
            return false
        }
    }

    /// Drops pending commits of partitions given up: their next owner reads from the last commit.
    func forget(_ partitions: Set<TopicPartition>) {
        let dropped = pending.withLock { pending in
            let dropped = pending.filter { partitions.contains($0.key) }
            for partition in partitions { pending[partition] = nil }
            return dropped
        }
        if !dropped.isEmpty {
            logger.warning("pending commits dropped with their partitions; the next owner reads those records again",
                           metadata: ["offsets": "\(dropped)"])
        }
    }
}
