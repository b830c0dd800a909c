import Logging
import Orchestration
import RdKafka
import Synchronization

/// Commits what a cycle finished and rewinds what it did not: per partition, the end
/// of the done prefix is committed, and the consumer seeks back to the first record
/// not done so it is read again. Partitions this instance no longer owns are skipped.
/// A failed commit is retried and reported, never counted.
final class OffsetLedger: Sendable {
    /// Commit outcomes, for the progress line and the summary.
    struct Counters: Sendable {
        var commits = 0
        var failedCommits = 0
        var skippedNotOwned = 0
        var rewinds = 0
    }

    private let consumer: KafkaConsumer
    private let logger: Logger
    private let attempts: Int
    private let counters = Mutex(Counters())

    init(consumer: KafkaConsumer, logger: Logger, attempts: Int = 5) {
        self.consumer = consumer
        self.logger = logger
        self.attempts = attempts
    }

    var snapshot: Counters { counters.withLock { $0 } }

    /// Commits and rewinds after a cycle, for the partitions in `only` (all when nil).
    /// - Returns: the partitions rewound.
    /// - Throws: `KafkaError` when a rewind fails: going on would read past records that
    ///   are not done, so the caller must stop (a restart resumes from the commits).
    @discardableResult
    func settle(_ result: CycleResult, only: Set<TopicPartition>? = nil) async throws -> Set<TopicPartition> {
        let owned = consumer.assignment
        var commits: [TopicPartitionOffset] = []
        var rewinds: [TopicPartitionOffset] = []
        for progress in result.partitions {
            let partition = TopicPartition(progress.partition)
            guard only?.contains(partition) ?? true else { continue }
            guard owned.contains(partition) else {
                counters.withLock { $0.skippedNotOwned += 1 }
                logger.info("not committing a partition no longer owned", metadata: ["partition": "\(partition)"])
                continue
            }
            if let offset = progress.commitOffset { commits.append(TopicPartitionOffset(partition, offset: offset)) }
            if let offset = progress.firstNotDone { rewinds.append(TopicPartitionOffset(partition, offset: offset)) }
        }
        await commit(commits)
        guard !rewinds.isEmpty else { return [] }
        try await consumer.seek(rewinds)
        counters.withLock { $0.rewinds += rewinds.count }
        logger.info("rewound to records not done", metadata: ["positions": "\(rewinds)"])
        return Set(rewinds.map(\.topicPartition))
    }

    /// Commits with retries on retriable errors; drops partitions lost meanwhile.
    private func commit(_ offsets: [TopicPartitionOffset]) async {
        var pending = offsets
        var attempt = 0
        while !pending.isEmpty {
            attempt += 1
            do {
                try await consumer.commit(pending)
                counters.withLock { $0.commits += 1 }
                return
            } catch let error as KafkaError where error.code == .notAssigned {
                let owned = consumer.assignment
                pending.removeAll { !owned.contains($0.topicPartition) }
            } catch let error as KafkaError where error.isRetriable && attempt < attempts {
                logger.warning("commit failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            } catch {
                counters.withLock { $0.failedCommits += 1 }
                logger.error(
                    "commit failed; the records will be read again after a restart or rebalance",
                    metadata: ["offsets": "\(pending)", "error": "\(error)"])
                return
            }
        }
    }
}
