import Synchronization

/// A snapshot of what the orchestrator has done since it was created.
public struct OrchestrationStats: Sendable, Hashable, Codable {
    /// Cycles executed.
    public var totalCycles: Int = 0
    /// Mean cycle duration over all cycles, in milliseconds.
    public var avgCycleTimeMs: Double = 0
    /// 95th percentile cycle duration over the recent window, in milliseconds.
    public var p95CycleTimeMs: Double = 0
    /// Longest cycle in the recent window, in milliseconds.
    public var maxCycleTimeMs: Double = 0
    /// Records done: processed successfully or dead-lettered.
    public var eventsProcessed: Int = 0
    /// Records processed successfully.
    public var eventsSucceeded: Int = 0
    /// Records whose processing failed for good.
    public var eventsFailed: Int = 0
    /// Records written to the dead-letter sink.
    public var eventsDeadLettered: Int = 0
    /// Records left for redelivery.
    public var eventsNotDone: Int = 0
    /// Regenerations the processor reported.
    public var regenerationsTriggered: Int = 0
    /// Deployments the processor reported.
    public var deploymentsCompleted: Int = 0
    /// Retried attempts.
    public var retries: Int = 0
    /// Attempts that hit the deadline.
    public var timeouts: Int = 0
    /// The concurrency limit now.
    public var currentConcurrency: Int = 0
    /// Total time spent in cycles, in milliseconds.
    public var totalCycleTimeMs: Double = 0

    /// Empty statistics: nothing done yet.
    public init() {}

    /// Succeeded over succeeded + failed; 1 when nothing was processed.
    public var successRate: Double {
        let attempted = eventsSucceeded + eventsFailed
        return attempted == 0 ? 1 : Double(eventsSucceeded) / Double(attempted)
    }
}

/// Accumulates cycle results into stats; the p95 window keeps the last `window` cycles.
final class StatsRecorder: Sendable {
    private struct Storage {
        var stats = OrchestrationStats()
        var recent: [Double] = []
        var next = 0
    }

    private let window: Int
    private let storage = Mutex(Storage())

    init(window: Int = 1024, concurrency: Int) {
        self.window = window
        storage.withLock { $0.stats.currentConcurrency = concurrency }
    }

    var snapshot: OrchestrationStats { storage.withLock { $0.stats } }

    func record(_ e: ParallelExecution) {
        storage.withLock { s in
            s.stats.totalCycles += 1
            s.stats.totalCycleTimeMs += e.durationMs
            s.stats.avgCycleTimeMs = s.stats.totalCycleTimeMs / Double(s.stats.totalCycles)
            s.stats.eventsProcessed += e.done
            s.stats.eventsSucceeded += e.tasksSucceeded
            s.stats.eventsFailed += e.tasksFailed
            s.stats.eventsDeadLettered += e.deadLettered
            s.stats.eventsNotDone += e.notDone
            s.stats.regenerationsTriggered += e.regenerations
            s.stats.deploymentsCompleted += e.deployments
            s.stats.retries += e.retries
            s.stats.timeouts += e.timeouts
            if s.recent.count < window { s.recent.append(e.durationMs) } else { s.recent[s.next] = e.durationMs }
            s.next = (s.next + 1) % window
            s.stats.p95CycleTimeMs = Self.percentile(0.95, of: s.recent)
            s.stats.maxCycleTimeMs = s.recent.max() ?? 0
        }
    }

    func setConcurrency(_ value: Int) { storage.withLock { $0.stats.currentConcurrency = value } }

    /// Nearest-rank percentile: the smallest value with at least `p` of the values at or below it.
    static func percentile(_ p: Double, of values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[max(0, min(sorted.count, rank) - 1)]
    }
}
