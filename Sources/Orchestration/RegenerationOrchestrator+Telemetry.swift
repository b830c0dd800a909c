import Foundation

extension RegenerationOrchestrator {
    func emit(
        _ type: TelemetryEventType, component: String, data: [String: JSONValue], tags: [String: String] = [:]
    ) async {
        await telemetry.emit(
            TelemetryEvent(
                eventType: type, timestamp: environment.wallClock(), component: component,
                instance: environment.instance, data: data, tags: tags))
    }

    /// `regeneration_completed` for the cycle, an alert when its success rate is low,
    /// and the breaker's state changes.
    func publish(_ e: ParallelExecution, traceIDs: [String] = []) async {
        logger.info(
            "cycle completed",
            metadata: [
                "execution": "\(e.executionID)", "durationMs": "\(Int(e.durationMs))", "events": "\(e.tasksExecuted)",
                "succeeded": "\(e.tasksSucceeded)", "deadLettered": "\(e.deadLettered)", "notDone": "\(e.notDone)",
                "parallelism": "\(e.parallelism)",
            ])
        var data = executionData(e)
        if !traceIDs.isEmpty { data["trace_ids"] = .array(traceIDs.map(JSONValue.string)) }
        await emit(.regenerationCompleted, component: "orchestrator", data: data, tags: ["scope": "cycle"])
        let attempted = e.tasksSucceeded + e.tasksFailed
        if attempted > 0, Double(e.tasksSucceeded) / Double(attempted) < config.health.minSuccessRate {
            await emit(.performanceAlert, component: "orchestrator", data: failurePatterns(e), tags: ["reason": "low_success_rate", "severity": "alert"])
        }
        for transition in breaker.drainTransitions() { await publish(transition) }
    }

    private func publish(_ t: CircuitBreaker.Transition) async {
        let data: [String: JSONValue] = [
            "metric": "circuit_breaker", "from": .string(t.from.rawValue), "to": .string(t.to.rawValue),
            "failure_ratio": .number(t.failureRatio), "cooldown_ms": .number(t.cooldown.milliseconds),
        ]
        logger.warning("circuit breaker \(t.from.rawValue) -> \(t.to.rawValue)", metadata: ["failureRatio": "\(t.failureRatio)"])
        await emit(.performanceMetric, component: "circuit_breaker", data: data, tags: ["kind": "circuit_breaker"])
        if t.to == .open {
            await emit(.performanceAlert, component: "circuit_breaker", data: data, tags: ["reason": "circuit_open", "severity": "alert"])
        }
    }

    /// Warns when the cycle overran its target, with suggestions, and lets AIMD react.
    func checkPerformance(_ e: ParallelExecution) async {
        if e.durationMs > Double(config.targetCycleMs) {
            var data = executionData(e)
            data["target_cycle_ms"] = .int(config.targetCycleMs)
            data["actual_cycle_ms"] = .number(e.durationMs)
            data["suggestions"] = .array(suggestions(for: e).map(JSONValue.string))
            await emit(.performanceWarning, component: "orchestrator", data: data, tags: ["reason": "cycle_over_target", "severity": "warning"])
        }
        guard config.adaptiveOptimization, let change = tuner.evaluate(e) else { return }
        recorder.setConcurrency(change.new)
        slots.setLimit(change.new)
        logger.notice("concurrency \(change.old) -> \(change.new)", metadata: ["reason": "\(change.reason)"])
        await emit(
            .performanceMetric, component: "adaptive",
            data: ["metric": "concurrency", "old": .int(change.old), "new": .int(change.new), "reason": .string(change.reason)],
            tags: ["kind": "adaptive_optimization"])
    }

    private func suggestions(for e: ParallelExecution) -> [String] {
        var result: [String] = []
        if e.saturated && e.concurrencyLimit < config.adaptive.maxConcurrency {
            result.append("increase concurrency: key groups waited for a slot (limit \(e.concurrencyLimit))")
        }
        if e.saturated && e.concurrencyLimit >= config.adaptive.maxConcurrency {
            result.append("scale out: add instances to the consumer group (concurrency is at its maximum)")
        }
        if e.timeouts > 0 { result.append("adjust timeouts: \(e.timeouts) attempt(s) hit eventTimeoutMs=\(config.eventTimeoutMs)") }
        if e.retries > 0 { result.append("investigate retriable failures: \(e.retries) retries") }
        if !e.saturated && e.keyGroups < e.concurrencyLimit {
            result.append("few keys per cycle (\(e.keyGroups)): reduce per-event work (template complexity, caching)")
        }
        if e.tasksExecuted > 0 && e.durationMs / Double(e.tasksExecuted) > 0 && result.isEmpty {
            result.append("reduce cycle.maxEvents so cycles fit the target")
        }
        return result
    }

    private func failurePatterns(_ e: ParallelExecution) -> [String: JSONValue] {
        var data = executionData(e)
        data["patterns"] = [
            "timeouts": .int(e.timeouts), "retries": .int(e.retries), "dead_lettered": .int(e.deadLettered),
            "invalid_input": .int(e.invalidInput), "not_done": .int(e.notDone),
            "breaker_state": .string(breaker.state.rawValue),
        ]
        data["affected_components"] = ["processor"]
        return data
    }

    func executionData(_ e: ParallelExecution) -> [String: JSONValue] {
        [
            "execution_id": .string(e.executionID.uuidString.lowercased()), "duration_ms": .number(e.durationMs),
            "started_at": .string(RFC3339.format(e.startedAt)), "completed_at": .string(RFC3339.format(e.completedAt)),
            "tasks_executed": .int(e.tasksExecuted), "tasks_succeeded": .int(e.tasksSucceeded),
            "tasks_failed": .int(e.tasksFailed), "dead_lettered": .int(e.deadLettered), "invalid_input": .int(e.invalidInput),
            "not_done": .int(e.notDone), "retries": .int(e.retries), "timeouts": .int(e.timeouts),
            "key_groups": .int(e.keyGroups), "concurrency_limit": .int(e.concurrencyLimit), "parallelism": .int(e.parallelism),
            "regenerations": .int(e.regenerations), "deployments": .int(e.deployments),
        ]
    }

    /// The statistics as the `regeneration_completed` event carries them (snake_case keys,
    /// with the success rate); safe from any task.
    public nonisolated func statsDocument() -> [String: JSONValue] { statsData(recorder.snapshot) }

    nonisolated func statsData(_ s: OrchestrationStats) -> [String: JSONValue] {
        [
            "total_cycles": .int(s.totalCycles), "avg_cycle_time_ms": .number(s.avgCycleTimeMs),
            "p95_cycle_time_ms": .number(s.p95CycleTimeMs), "events_processed": .int(s.eventsProcessed),
            "events_succeeded": .int(s.eventsSucceeded), "events_failed": .int(s.eventsFailed),
            "events_dead_lettered": .int(s.eventsDeadLettered), "events_not_done": .int(s.eventsNotDone),
            "regenerations_triggered": .int(s.regenerationsTriggered), "deployments_completed": .int(s.deploymentsCompleted),
            "retries": .int(s.retries), "timeouts": .int(s.timeouts), "concurrency": .int(s.currentConcurrency),
            "success_rate": .number(s.successRate),
        ]
    }

    func configurationSnapshot() -> [String: JSONValue] {
        guard let data = try? JSONEncoder().encode(config), let value = try? JSONDecoder().decode(JSONValue.self, from: data),
            case .object(let members) = value
        else { return [:] }
        return ["config": .object(members)]
    }
}
