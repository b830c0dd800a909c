import Foundation

/// What one cycle did: the seed's ParallelExecution, plus the outcome counts that
/// decide what may be committed.
public struct ParallelExecution: Sendable, Hashable, Codable {
    /// Unique id of the cycle, for tracing and telemetry.
    public var executionID: UUID
    /// When the cycle started (wall clock).
    public var startedAt: Date
    /// When it completed (wall clock).
    public var completedAt: Date
    /// How long it took, measured on the monotonic clock.
    public var durationMs: Double
    /// Records in the cycle.
    public var tasksExecuted: Int
    /// Records processed successfully.
    public var tasksSucceeded: Int
    /// Records whose processing failed for good (dead-lettered, or the dead letter failed too).
    public var tasksFailed: Int
    /// Records written to the dead-letter sink (failed processing or invalid input).
    public var deadLettered: Int
    /// Records of them that were invalid input (undecodable, invalid, oversize).
    public var invalidInput: Int
    /// Records neither processed nor dead-lettered (breaker open, cancelled, dead letter
    /// failed): they must be read again.
    public var notDone: Int
    /// Retried attempts (attempts after the first).
    public var retries: Int
    /// Attempts that hit the per-event timeout.
    public var timeouts: Int
    /// Key groups the cycle was split into.
    public var keyGroups: Int
    /// The concurrency limit in force.
    public var concurrencyLimit: Int
    /// The most groups that were in flight at once.
    public var parallelism: Int
    /// Whether groups waited for a free slot (the limit, not the input, bounded parallelism).
    public var saturated: Bool
    /// Regenerations the processor reported.
    public var regenerations: Int
    /// Deployments the processor reported.
    public var deployments: Int

    /// Records that count as done for commits: succeeded or dead-lettered.
    public var done: Int { tasksSucceeded + deadLettered }
}

/// One partition's share of a cycle, with what may be committed.
public struct PartitionProgress: Sendable, Hashable, Codable {
    /// The partition.
    public var partition: PartitionKey
    /// The done offsets, ascending.
    public var doneOffsets: [Int64]
    /// The offset to commit (last offset of the done prefix + 1), or nil when the first
    /// record of the partition in this cycle is not done.
    public var commitOffset: Int64?
    /// The first record not done, where the consumer must seek back to; nil when all are done.
    public var firstNotDone: Int64?
}

/// What ``RegenerationOrchestrator/executeCycle(_:)`` returns.
public struct CycleResult: Sendable, Hashable {
    /// The execution details.
    public var execution: ParallelExecution
    /// Per partition: what is done, what to commit, where to seek back to.
    public var partitions: [PartitionProgress]
}
