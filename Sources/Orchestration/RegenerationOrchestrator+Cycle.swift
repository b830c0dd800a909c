import Foundation

extension RegenerationOrchestrator {
    /// Executes one cycle: plan (decode, group by key, order by priority), dispatch with
    /// bounded parallelism, collect every outcome, update stats, publish telemetry,
    /// check the target and tune. A cycle never fails because some events failed.
    /// - Returns: the execution details and, per partition, what may be committed.
    /// - Throws: `OrchestrationError.notRunning` when not running.
    public func executeCycle(_ cycle: Cycle) async throws -> CycleResult {
        try cycleStarted()
        defer { cycleEnded() }
        let startedAt = environment.wallClock()
        let start = environment.clock.now
        let executionID = UUID()
        let plan = CyclePlan(cycle, maxEventBytes: config.maxEventBytes)
        let concurrency = tuner.concurrency
        logger.debug(
            "cycle started",
            metadata: ["execution": "\(executionID)", "events": "\(plan.recordCount)", "keys": "\(plan.runs.count)"])
        var report = await dispatcher(for: executionID).dispatch(plan, concurrency: concurrency)
        let completion = await complete(&report, executionID: executionID)
        var execution = summarize(
            report, plan: plan, id: executionID, startedAt: startedAt,
            duration: environment.clock.now - start, concurrency: concurrency)
        execution.regenerations += completion.regenerations
        execution.deployments += completion.deployments
        recorder.record(execution)
        await publish(execution)
        await checkPerformance(execution)
        return CycleResult(execution: execution, partitions: Self.progress(of: cycle, results: report.results))
    }

    /// Lets the processor finish the cycle as a whole; when that fails, the succeeded
    /// records become not done, so nothing is committed past work that did not land.
    private func complete(_ report: inout CycleDispatcher.Report, executionID: UUID) async -> ProcessingReport {
        let succeeded = report.results.compactMap { result -> CompletedEvent? in
            guard case .succeeded = result.outcome, let event = result.event else { return nil }
            return CompletedEvent(event: event, position: result.position)
        }
        guard !succeeded.isEmpty else { return .none }
        let inCycleOrder = succeeded.sorted { ($0.position.partition, $0.position.offset) < ($1.position.partition, $1.position.offset) }
        do {
            return try await processor.completeCycle(inCycleOrder, executionID: executionID.uuidString.lowercased())
        } catch {
            logger.error("cycle completion failed; its events will be read again", metadata: ["error": "\(error)"])
            breaker.record(success: false, permit: .allowed)
            for index in report.results.indices where report.results[index].outcome.isSucceeded {
                report.results[index].outcome = .notDone(.cycleCompletionFailed, processingFailed: false)
            }
            await emit(
                .regenerationFailed, component: "processor",
                data: ["execution_id": .string(executionID.uuidString.lowercased()), "error": .string("\(error)"), "events": .int(succeeded.count)],
                tags: ["reason": "cycle_completion_failed"])
            return .none
        }
    }

    private func dispatcher(for executionID: UUID) -> CycleDispatcher {
        CycleDispatcher(
            processor: processor, deadLetters: deadLetters, breaker: breaker, limiter: limiter, retry: config.retry,
            eventTimeout: .milliseconds(config.eventTimeoutMs), environment: environment, logger: logger,
            executionID: executionID.uuidString.lowercased())
    }

    private func summarize(
        _ report: CycleDispatcher.Report, plan: CyclePlan, id: UUID, startedAt: Date, duration: Duration, concurrency: Int
    ) -> ParallelExecution {
        var e = ParallelExecution(
            executionID: id, startedAt: startedAt, completedAt: environment.wallClock(), durationMs: duration.milliseconds,
            tasksExecuted: plan.recordCount, tasksSucceeded: 0, tasksFailed: 0, deadLettered: 0, invalidInput: 0,
            notDone: 0, retries: 0, timeouts: 0, keyGroups: plan.runs.count, concurrencyLimit: concurrency,
            parallelism: report.peakParallelism, saturated: report.saturated, regenerations: 0, deployments: 0)
        for result in report.results {
            e.retries += max(0, result.attempts - 1)
            e.timeouts += result.timeouts
            switch result.outcome {
            case .succeeded(let processing):
                e.tasksSucceeded += 1
                e.regenerations += processing.regenerations
                e.deployments += processing.deployments
            case .deadLettered(let invalidInput):
                e.deadLettered += 1
                if invalidInput { e.invalidInput += 1 } else { e.tasksFailed += 1 }
            case .notDone(_, let processingFailed):
                e.notDone += 1
                if processingFailed { e.tasksFailed += 1 }
            }
        }
        return e
    }

    /// Per partition: the done offsets, the commit offset (end of the done prefix) and
    /// the first offset to read again.
    static func progress(of cycle: Cycle, results: [RecordResult]) -> [PartitionProgress] {
        var done: [SourcePosition: Bool] = [:]
        done.reserveCapacity(results.count)
        for result in results { done[result.position] = result.outcome.isDone }
        var offsets: [PartitionKey: [Int64]] = [:]
        for record in cycle.records { offsets[record.position.partition, default: []].append(record.position.offset) }
        return offsets.keys.sorted().map { partition in
            let sorted = offsets[partition]!.sorted()
            let isDone = { (offset: Int64) in done[SourcePosition(topic: partition.topic, partition: partition.partition, offset: offset)] ?? false }
            let firstNotDone = sorted.first { !isDone($0) }
            let prefix = sorted.prefix { firstNotDone == nil || $0 < firstNotDone! }
            return PartitionProgress(
                partition: partition, doneOffsets: sorted.filter(isDone), commitOffset: prefix.last.map { $0 + 1 },
                firstNotDone: firstNotDone)
        }
    }
}
