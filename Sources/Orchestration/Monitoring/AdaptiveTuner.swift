/// A change of the concurrency limit, with why.
public struct ConcurrencyChange: Sendable, Hashable {
    /// The limit before.
    public var old: Int
    /// The limit after.
    public var new: Int
    /// Why, in words for telemetry and logs.
    public var reason: String
}

/// AIMD on the concurrency limit, within the policy's bounds, at most once every
/// `evaluateEveryCycles` cycles.
struct AdaptiveTuner: Sendable {
    let policy: AdaptivePolicy
    let targetCycleMs: Double
    private(set) var concurrency: Int
    private var cyclesSinceChange = 0

    init(policy: AdaptivePolicy, targetCycleMs: Int, initial: Int) {
        self.policy = policy
        self.targetCycleMs = Double(targetCycleMs)
        concurrency = min(max(initial, policy.minConcurrency), policy.maxConcurrency)
    }

    /// Looks at a finished cycle and returns the change it calls for, if any.
    mutating func evaluate(_ e: ParallelExecution) -> ConcurrencyChange? {
        cyclesSinceChange += 1
        guard cyclesSinceChange >= policy.evaluateEveryCycles, e.tasksExecuted > 0 else { return nil }
        let change = decreaseReason(e).map { decrease(because: $0) } ?? increaseReason(e).map { increase(because: $0) }
        guard let change, change.new != change.old else { return nil }
        concurrency = change.new
        cyclesSinceChange = 0
        return change
    }

    private func decreaseReason(_ e: ParallelExecution) -> String? {
        let attempted = Double(max(1, e.tasksExecuted - e.invalidInput))
        let failureRate = Double(e.tasksFailed) / attempted
        let timeoutRate = Double(e.timeouts) / attempted
        if e.durationMs > targetCycleMs {
            return "cycle took \(Int(e.durationMs)) ms, over the \(Int(targetCycleMs)) ms target"
        }
        if failureRate > policy.failureRateThreshold {
            return "failure rate \(percent(failureRate)) over \(percent(policy.failureRateThreshold))"
        }
        if timeoutRate > policy.timeoutRateThreshold {
            return "timeout rate \(percent(timeoutRate)) over \(percent(policy.timeoutRateThreshold))"
        }
        return nil
    }

    private func increaseReason(_ e: ParallelExecution) -> String? {
        guard e.saturated, e.durationMs <= targetCycleMs else { return nil }
        return "cycle under target (\(Int(e.durationMs)) ms) with key groups waiting for a slot"
    }

    private func decrease(because reason: String) -> ConcurrencyChange {
        let lowered = max(policy.minConcurrency, Int((Double(concurrency) * policy.decreaseFactor).rounded(.down)))
        return ConcurrencyChange(old: concurrency, new: lowered, reason: reason)
    }

    private func increase(because reason: String) -> ConcurrencyChange {
        ConcurrencyChange(old: concurrency, new: min(policy.maxConcurrency, concurrency + policy.increaseStep), reason: reason)
    }

    private func percent(_ value: Double) -> String { "\(Int((value * 100).rounded()))%" }
}
