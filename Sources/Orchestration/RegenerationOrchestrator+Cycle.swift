import Foundation

extension RegenerationOrchestrator {
    /// Executes one cycle: plan (decode, group by key, order by priority), dispatch with
    /// bounded parallelism, collect every outcome, update stats, publish telemetry,
    /// check the target and tune. A cycle never fails because some events failed.
    ///
    /// Planning and the per-partition progress run outside the actor, so with several
    /// cycles in flight one cycle's decoding does not wait for another's bookkeeping.
    /// - Returns: the execution details and, per partition, what may be committed.
    /// - Throws: `OrchestrationError.notRunning` when not running.
    public nonisolated func executeCycle(_ cycle: Cycle) async throws -> CycleResult {
        let startedAt = environment.wallClock()
        let start = environment.clock.now
        let plan = CyclePlan(cycle, maxEventBytes: config.maxEventBytes)
        let (execution, results) = try await execute(plan, startedAt: startedAt, start: start)
        return CycleResult(execution: execution, partitions: Self.progress(of: plan, results: results))
    }

    private func execute(
        _ plan: CyclePlan, startedAt: Date, start: Duration
    ) async throws -> (ParallelExecution, [RecordResult]) {
        try cycleStarted()
        defer { cycleEnded() }
        let executionID = UUID()
        let concurrency = tuner.concurrency
        logger.debug(
            "cycle started",
            metadata: ["execution": "\(executionID)", "events": "\(plan.recordCount)", "keys": "\(plan.runs.count)"])
        let dispatcher = dispatcher(for: executionID)
        var report = await dispatcher.dispatch(plan)
        let completion = await complete(&report, plan: plan, dispatcher: dispatcher, executionID: executionID)
        if let reason = dispatcher.deadLetterErrors.unusable {
            logger.critical("the dead-letter sink cannot store anything any more; stopping without committing this cycle", metadata: ["error": "\(reason)"])
            await emit(
                .performanceAlert, component: "dead_letter", data: ["error": .string(reason), "execution_id": .string(executionID.uuidString.lowercased())],
                tags: ["reason": "dead_letter_unusable", "severity": "critical"])
            throw OrchestrationError.deadLetterSinkUnusable(reason)
        }
        let deadLetterBackoff = await noteDeadLetterFailures(in: report, dispatcher: dispatcher)
        var execution = summarize(
            report, plan: plan, id: executionID, startedAt: startedAt,
            duration: environment.clock.now - start, concurrency: concurrency)
        execution.regenerations += completion.report.regenerations
        execution.deployments += completion.report.deployments
        recorder.record(execution)
        metrics.record(execution, attempts: report.results.reduce(0) { $0 + $1.attempts })
        await publish(execution, traceIDs: Self.traceIDs(of: report.results))
        await checkPerformance(execution)
        // After a completion or dead-letter failure, wait before the caller reads the same records again.
        if let backoff = [completion.backoff, deadLetterBackoff].compactMap({ $0 }).max() { try? await environment.clock.sleep(for: backoff) }
        return (execution, report.results)
    }

    /// Lets the processor finish the cycle as a whole. Events it rejects are dead-lettered
    /// with its reason. When it fails as a whole, the succeeded records become not done, so
    /// nothing is committed past work that did not land, and the caller is held back for
    /// a backoff that grows with each consecutive failure.
    private func complete(
        _ report: inout CycleDispatcher.Report, plan: CyclePlan, dispatcher: CycleDispatcher, executionID: UUID
    ) async -> (report: ProcessingReport, backoff: Duration?) {
        var succeededAt = [Bool](repeating: false, count: plan.recordCount)
        var succeeded = 0
        for result in report.results where result.outcome.isSucceeded {
            succeededAt[result.index] = true
            succeeded += 1
        }
        guard succeeded > 0 else { return (.none, nil) }
        // In cycle order (each partition's records in offset order), by index: no sort.
        var byIndex = [CompletedEvent?](repeating: nil, count: plan.recordCount)
        for run in plan.runs {
            for planned in run.records where succeededAt[planned.index] {
                if case .success(let event) = planned.content { byIndex[planned.index] = CompletedEvent(event: event, position: planned.record.position) }
            }
        }
        let inCycleOrder = byIndex.compactMap { $0 }
        let id = executionID.uuidString.lowercased()
        let completion: CycleCompletion
        do {
            completion = try await processor.completeCycle(inCycleOrder, executionID: id)
        } catch {
            completionFailures += 1
            let backoff = config.retry.ceiling(afterAttempt: completionFailures)
            logger.error(
                "cycle completion failed; its events will be read again",
                metadata: ["error": "\(error)", "consecutiveFailures": "\(completionFailures)", "backoffMs": "\(backoff.milliseconds)"])
            breaker.record(success: false, permit: .allowed)
            for index in report.results.indices where report.results[index].outcome.isSucceeded {
                report.results[index].outcome = .notDone(.cycleCompletionFailed, processingFailed: false)
            }
            var data: [String: JSONValue] = ["execution_id": .string(id), "error": .string("\(error)"), "events": .int(succeeded)]
            await emit(.regenerationFailed, component: "processor", data: data, tags: ["reason": "cycle_completion_failed"])
            data["consecutive_failures"] = .int(completionFailures)
            data["backoff_ms"] = .number(backoff.milliseconds)
            await emit(.performanceAlert, component: "processor", data: data, tags: ["reason": "completion_failing", "severity": "alert"])
            return (.none, backoff)
        }
        if completionFailures > 0 {
            logger.notice("cycle completion recovered", metadata: ["afterFailures": "\(completionFailures)"])
            completionFailures = 0
        }
        if !completion.rejected.isEmpty { await deadLetterRejected(completion.rejected, in: &report, plan: plan, dispatcher: dispatcher) }
        return (completion.report, nil)
    }

    /// Counts the cycle's records whose dead letter was not stored. While that goes on
    /// cycle after cycle, the caller is held back for a backoff that grows with each one
    /// (the records are read again: without it the same window would be re-processed as
    /// fast as the sink fails), and a `dead_letter_failing` alert says so with the error.
    private func noteDeadLetterFailures(in report: CycleDispatcher.Report, dispatcher: CycleDispatcher) async -> Duration? {
        let failed = report.results.count { result in
            if case .notDone(.deadLetterFailed, _) = result.outcome { true } else { false }
        }
        guard failed > 0 else {
            if deadLetterFailures > 0 {
                logger.notice("dead letters are stored again", metadata: ["afterFailures": "\(deadLetterFailures)"])
                deadLetterFailures = 0
            }
            return nil
        }
        deadLetterFailures += 1
        let backoff = config.retry.ceiling(afterAttempt: deadLetterFailures)
        let error = dispatcher.deadLetterErrors.first ?? "unknown"
        logger.error(
            "dead letters not stored; their records will be read again",
            metadata: ["records": "\(failed)", "error": "\(error)", "consecutiveFailures": "\(deadLetterFailures)", "backoffMs": "\(backoff.milliseconds)"])
        await emit(
            .performanceAlert, component: "dead_letter",
            data: [
                "records": .int(failed), "error": .string(error), "consecutive_failures": .int(deadLetterFailures),
                "backoff_ms": .number(backoff.milliseconds),
            ],
            tags: ["reason": "dead_letter_failing", "severity": "alert"])
        return backoff
    }

    /// Dead-letters the events the processor rejected. One whose dead letter is not stored
    /// stays not done, and so do the later records of its key, as in dispatch.
    private func deadLetterRejected(
        _ rejected: [SourcePosition: String], in report: inout CycleDispatcher.Report, plan: CyclePlan, dispatcher: CycleDispatcher
    ) async {
        var resultOfRecord = [Int?](repeating: nil, count: plan.recordCount)
        for (index, result) in report.results.enumerated() { resultOfRecord[result.index] = index }
        for run in plan.runs {
            var blocked = false
            for planned in run.records {
                guard let index = resultOfRecord[planned.index], report.results[index].outcome.isSucceeded else { continue }
                if blocked {
                    report.results[index].outcome = .notDone(.blockedByEarlier, processingFailed: false)
                } else if let reason = rejected[planned.record.position] {
                    report.results[index].outcome = await dispatcher.deadLetter(
                        planned.record, reason: "regeneration failed: \(reason)", attempts: report.results[index].attempts,
                        invalidInput: false, span: report.results[index].trace?.childSpan())
                    blocked = !report.results[index].outcome.isDone
                }
            }
        }
    }

    private func dispatcher(for executionID: UUID) -> CycleDispatcher {
        CycleDispatcher(
            processor: processor, deadLetters: deadLetters, breaker: breaker, limiter: limiter, retry: config.retry,
            eventTimeout: watchdog.limit, watchdog: watchdog, slots: slots, environment: environment, logger: logger,
            executionID: executionID.uuidString.lowercased(), invalidTraceparents: metrics.invalidTraceparents)
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

    /// The distinct trace ids of the cycle's records, in cycle order, at most 100 (the
    /// cycle's telemetry names them so a trace can be followed to its cycle).
    static func traceIDs(of results: [RecordResult]) -> [String] {
        var seen = Set<String>()
        var ids: [String] = []
        for result in results {
            guard ids.count < 100, let id = result.trace?.traceID, seen.insert(id).inserted else { continue }
            ids.append(id)
        }
        return ids
    }

    /// Per partition: the done offsets, the commit offset (end of the done prefix) and
    /// the first offset to read again.
    static func progress(of plan: CyclePlan, results: [RecordResult]) -> [PartitionProgress] {
        var done = [Bool](repeating: false, count: plan.recordCount)
        for result in results { done[result.index] = result.outcome.isDone }
        // Each partition's (offset, done), in the order read; a cycle mostly holds a
        // partition's records side by side, so the lookup is skipped while it stays the same.
        var partitions: [PartitionKey] = []
        var records: [[(offset: Int64, done: Bool)]] = []
        var slotByPartition: [PartitionKey: Int] = [:]
        var current = -1
        for (index, position) in plan.positions.enumerated() {
            if current < 0 || partitions[current] != position.partition {
                if let slot = slotByPartition[position.partition] {
                    current = slot
                } else {
                    current = partitions.count
                    slotByPartition[position.partition] = current
                    partitions.append(position.partition)
                    records.append([])
                }
            }
            records[current].append((position.offset, done[index]))
        }
        return partitions.indices.sorted { partitions[$0] < partitions[$1] }.map { slot in
            var sorted = records[slot]
            if !sorted.isSorted(by: { $0.offset < $1.offset }) { sorted.sort { $0.offset < $1.offset } }
            let firstNotDone = sorted.firstIndex { !$0.done }
            let doneOffsets = sorted.compactMap { $0.done ? $0.offset : nil }
            let commitOffset: Int64? =
                switch firstNotDone {
                case nil: sorted.last.map { $0.offset + 1 }
                case 0: nil
                case let index?: sorted[index - 1].offset + 1
                }
            return PartitionProgress(
                partition: partitions[slot], doneOffsets: doneOffsets, commitOffset: commitOffset,
                firstNotDone: firstNotDone.map { sorted[$0].offset })
        }
    }
}

extension Array {
    /// Whether the elements are in the order `areInIncreasingOrder` gives.
    fileprivate func isSorted(by areInIncreasingOrder: (Element, Element) -> Bool) -> Bool {
        zip(self, dropFirst()).allSatisfy { !areInIncreasingOrder($1, $0) }
    }
}
