/// What one health check found, ready to publish.
struct HealthFindings: Sendable {
    var metric: [String: JSONValue]
    var warnings: [(reason: String, data: [String: JSONValue])] = []
    var alerts: [(reason: String, data: [String: JSONValue])] = []
}

/// Compares the stats at the end of an interval with those at its start.
struct HealthCheck: Sendable {
    let policy: HealthPolicy
    let targetCycleMs: Double
    let interval: Duration

    func evaluate(
        _ now: OrchestrationStats, since before: OrchestrationStats, pendingWork: Int64?, memory: UInt64?
    ) -> HealthFindings {
        let cycles = now.totalCycles - before.totalCycles
        let succeeded = now.eventsSucceeded - before.eventsSucceeded
        let failed = now.eventsFailed - before.eventsFailed
        let successRate = succeeded + failed == 0 ? 1 : Double(succeeded) / Double(succeeded + failed)
        let intervalAvg = cycles == 0 ? 0 : (now.totalCycleTimeMs - before.totalCycleTimeMs) / Double(cycles)
        let seconds = max(0.001, interval.seconds)
        var findings = HealthFindings(metric: [
            "cycles": .int(now.totalCycles), "cycles_in_interval": .int(cycles),
            "avg_cycle_time_ms": .number(now.avgCycleTimeMs), "interval_avg_cycle_time_ms": .number(intervalAvg),
            "p95_cycle_time_ms": .number(now.p95CycleTimeMs), "success_rate": .number(successRate),
            "events_per_second": .number(Double(now.eventsProcessed - before.eventsProcessed) / seconds),
            "concurrency": .int(now.currentConcurrency), "events_processed": .int(now.eventsProcessed),
            "events_dead_lettered": .int(now.eventsDeadLettered), "events_not_done": .int(now.eventsNotDone),
            "memory_bytes": memory.map { .int($0) } ?? .null, "pending_work": pendingWork.map { .int($0) } ?? .null,
        ])
        if successRate < policy.minSuccessRate {
            findings.warnings.append(("low_success_rate", [
                "success_rate": .number(successRate), "threshold": .number(policy.minSuccessRate),
                "failed": .int(failed), "succeeded": .int(succeeded),
            ]))
        }
        if cycles > 0 && intervalAvg > targetCycleMs {
            findings.warnings.append(("slow_cycles", [
                "avg_cycle_time_ms": .number(intervalAvg), "target_cycle_ms": .number(targetCycleMs),
            ]))
        }
        if cycles == 0, let pendingWork, pendingWork > 0 {
            findings.alerts.append(("stalled", ["pending_work": .int(pendingWork), "cycles_in_interval": 0]))
        }
        if policy.memoryLimitBytes > 0, let memory, memory > policy.memoryLimitBytes {
            findings.alerts.append(("memory_over_limit", [
                "memory_bytes": .int(memory), "limit_bytes": .int(policy.memoryLimitBytes),
            ]))
        }
        return findings
    }
}
