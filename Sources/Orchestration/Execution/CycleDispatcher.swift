import CoreMetrics
import Logging
import Synchronization
import W3CTraceContext

/// Runs a plan: each key run in a slot of the orchestrator's concurrency limit (shared
/// with the other cycles in flight); each record with rate limiting,
/// the breaker's permission, a per-attempt deadline and retries; failures for good into
/// the dead-letter sink. Collects every record's outcome.
struct CycleDispatcher: Sendable {
    let processor: any EventProcessor
    let deadLetters: any DeadLetterSink
    let breaker: CircuitBreaker
    let limiter: RateLimiter
    let retry: RetryPolicy
    let eventTimeout: Duration
    let watchdog: DeadlineWatchdog
    let slots: ConcurrencySlots
    let environment: OrchestrationEnvironment
    let logger: Logger
    let executionID: String
    /// Counts records whose `traceparent` is not valid W3C trace context.
    let invalidTraceparents: Counter
    /// What went wrong with dead letters in this cycle.
    let deadLetterErrors = DeadLetterErrors()

    struct Report {
        var results: [RecordResult]
        var peakParallelism: Int
        var saturated: Bool
    }

    /// Runs the plan's key runs in order on at most `concurrency` workers, each taking the
    /// next run not yet taken. A worker holds a slot of the shared limit for a run, and
    /// keeps it for its next one unless a lower limit or another cycle's worker wants it:
    /// a task per worker rather than per key run, and no round trip through the loop
    /// that hands out runs (most runs of a no-op or fast processor take microseconds).
    func dispatch(_ plan: CyclePlan) async -> Report {
        let gauge = InFlightGauge()
        let shared = WorkerShare()
        let workers = min(plan.runs.count, max(1, slots.limit))
        var results: [RecordResult] = []
        results.reserveCapacity(plan.recordCount)
        await withTaskGroup(of: [RecordResult].self) { group in
            for _ in 0..<workers {
                group.addTask { await worker(plan, shared: shared, gauge: gauge) }
            }
            for await finished in group { results += finished }
        }
        return Report(
            results: results, peakParallelism: gauge.peak, saturated: plan.runs.count > workers || shared.waited.load(ordering: .relaxed))
    }

    /// One worker: takes runs until none is left. Its attempts run in its own task, with no
    /// task of their own each; when one passes its deadline the watchdog cancels that task
    /// (an attempt cannot be stopped otherwise), and a cancelled task cannot go on. So a
    /// worker's runs go on in a task of their own, a stretch, and a new stretch picks up
    /// where a cancelled one stopped. A cancellation of the worker (of its cycle) reaches
    /// the stretch running.
    private func worker(_ plan: CyclePlan, shared: WorkerShare, gauge: InFlightGauge) async -> [RecordResult] {
        var results: [RecordResult] = []
        var start = Stretch.Start(holding: false, interrupted: nil)
        while true {
            let canceller = AttemptCanceller()
            let stretch = Task { [start] in await self.stretch(plan, from: start, shared: shared, gauge: gauge, canceller: canceller) }
            canceller.attach { stretch.cancel() }
            let ended = await withTaskCancellationHandler { await stretch.value } onCancel: { stretch.cancel() }
            results += ended.results
            guard let next = ended.next else { return results }
            start = next
        }
    }

    /// A worker's runs until none is left, or until an attempt passes its deadline.
    private func stretch(
        _ plan: CyclePlan, from start: Stretch.Start, shared: WorkerShare, gauge: InFlightGauge, canceller: AttemptCanceller
    ) async -> Stretch.End {
        var results: [RecordResult] = []
        var holding = start.holding
        var interrupted = start.interrupted
        var heldThreadSince = ContinuousClock.now
        while true {
            let index: Int
            let progress: RunProgress
            if let resumed = interrupted {
                (index, progress) = resumed
                interrupted = nil
            } else {
                // A slot first, then the next run: a worker waiting for a slot holds no
                // run back from the workers of this cycle that have one.
                guard shared.next.load(ordering: .relaxed) < plan.runs.count else { break }
                if !holding {
                    holding = slots.tryAcquire()
                    if !holding {
                        shared.waited.store(true, ordering: .relaxed)
                        // Cancelled while waiting: the run is still reported (as not done), without a slot.
                        holding = await slots.acquire().acquired
                    }
                }
                index = shared.next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < plan.runs.count else { break }
                gauge.enter()
                progress = RunProgress()
            }
            switch await execute(plan.runs[index], from: progress, canceller: canceller) {
            case .finished(let run):
                gauge.leave()
                results += run
            case .interrupted(let progress):
                return Stretch.End(results: results, next: Stretch.Start(holding: holding, interrupted: (index, progress)))
            }
            if holding && !slots.keep() { holding = false }
            // Runs that never suspend (fast or CPU-bound processors) would hold
            // a thread of the shared pool for the whole cycle: let others in.
            if ContinuousClock.now - heldThreadSince > .milliseconds(1) {
                await Task.yield()
                heldThreadSince = ContinuousClock.now
            }
        }
        if holding { slots.release() }
        return Stretch.End(results: results, next: nil)
    }

    /// One key's records in order, from `progress` on. Once one is not done, the rest wait
    /// for redelivery too, so a key never runs out of order.
    private func execute(_ run: KeyRun, from progress: RunProgress, canceller: AttemptCanceller) async -> RunStep {
        var results = progress.results
        var pending = progress.pending
        results.reserveCapacity(run.records.count)
        while results.count < run.records.count {
            let planned = run.records[results.count]
            if let last = results.last, !last.outcome.isDone {
                results.append(
                    RecordResult(
                        index: planned.index, position: planned.record.position,
                        outcome: .notDone(.blockedByEarlier, processingFailed: false), attempts: 0, timeouts: 0))
                continue
            }
            switch planned.content {
            case .success(let event):
                switch await process(planned.record, event, index: planned.index, key: run.key, after: pending, canceller: canceller) {
                case .finished(let result):
                    results.append(result)
                    pending = nil
                case .interrupted(let attempts):
                    return .interrupted(RunProgress(results: results, pending: attempts))
                }
            case .failure(let problem):
                let outcome = await deadLetter(planned.record, reason: "invalid event: \(problem)", attempts: 0, invalidInput: true)
                results.append(
                    RecordResult(index: planned.index, position: planned.record.position, outcome: outcome, attempts: 0, timeouts: 0))
            }
        }
        return .finished(results)
    }

    /// The record's trace context; an invalid `traceparent` is counted and ignored.
    private func trace(of record: CycleRecord) -> RecordTrace? {
        do {
            return try RecordTrace(record)
        } catch {
            invalidTraceparents.increment()
            logger.debug("invalid traceparent ignored", metadata: ["position": "\(record.position)", "error": "\(error)"])
            return nil
        }
    }

    /// Attempts one event until it succeeds, fails for good, may not go on, or an attempt
    /// passes its deadline (then the worker goes on in a new task, from what this returns).
    /// Each attempt of a record with a valid `traceparent` gets a child span: its id and the
    /// trace id go into the attempt's log lines, the processor's context and a dead letter's
    /// headers.
    private func process(
        _ record: CycleRecord, _ event: ChangeEvent, index: Int, key: String, after earlier: Attempts?, canceller: AttemptCanceller
    ) async -> RecordStep {
        var attempt = earlier?.attempt ?? 0
        var timeouts = earlier?.timeouts ?? 0
        let trace = earlier == nil ? trace(of: record) : earlier?.trace
        var span = earlier?.span
        var failure = earlier?.failure
        var logger = self.logger
        if let trace { logger[metadataKey: "trace_id"] = "\(trace.traceID)" }
        if let span { logger[metadataKey: "span_id"] = "\(span.spanID)" }
        func result(_ outcome: RecordOutcome) -> RecordStep {
            .finished(
                RecordResult(
                    index: index, position: record.position, outcome: outcome, attempts: attempt, timeouts: timeouts, trace: trace))
        }
        // Resumed after a deadline while the cycle is being cancelled: as a cancellation during the attempt.
        if earlier != nil && Task.isCancelled { return result(.notDone(.cancelled, processingFailed: false)) }
        while true {
            if let failed = failure {
                if failed.kind == .permanent || attempt >= retry.maxAttempts {
                    let reason = "processing failed after \(attempt) attempt(s): \(failed)"
                    return result(await deadLetter(record, reason: reason, attempts: attempt, invalidInput: false, span: span, logger: logger))
                }
                guard (try? await backoff(after: attempt)) != nil else {
                    return result(.notDone(.cancelled, processingFailed: false))
                }
                failure = nil
            }
            guard !Task.isCancelled, (try? await limiter.acquire()) != nil else {
                return result(.notDone(.cancelled, processingFailed: false))
            }
            let permit = breaker.acquire()
            guard permit != .rejected else { return result(.notDone(.breakerOpen, processingFailed: false)) }
            attempt += 1
            span = trace?.childSpan()
            if let span { logger[metadataKey: "span_id"] = "\(span.spanID)" }
            let context = EventContext(
                position: record.position, key: key, attempt: attempt, traceparent: span?.traceParentHeaderValue,
                executionID: executionID, tracestate: span?.traceStateHeaderValue)
            let (outcome, expired) = await withDeadline(watchdog, canceller: canceller) {
                try await processor.process(event, context: context)
            }
            switch outcome {
            case .success(let report) where !expired:
                breaker.record(success: true, permit: permit)
                return result(.succeeded(report))
            case .failure(let error) where Task.isCancelled && !expired:
                breaker.abandon(permit)
                logger.debug("attempt cancelled", metadata: ["position": "\(record.position)", "error": "\(error)"])
                return result(.notDone(.cancelled, processingFailed: false))
            case .failure(let error) where !expired:
                failure = classify(error)
                breaker.record(success: false, permit: permit)
            default:
                // Past its deadline, whatever it returned: this task is cancelled now, and
                // what follows the attempt happens in the worker's next one.
                timeouts += 1
                breaker.record(success: false, permit: permit)
                return .interrupted(
                    Attempts(attempt: attempt, timeouts: timeouts, trace: trace, span: span, failure: classify(AttemptTimedOut())))
            }
        }
    }

    private func classify(_ error: any Error) -> ProcessingError {
        switch error {
        case let error as ProcessingError: error
        case is AttemptTimedOut: .retriable("timed out after \(eventTimeout)")
        default: .retriable(String(describing: error))
        }
    }

    /// Full jitter: a uniform wait between zero and the policy's ceiling for this attempt.
    private func backoff(after attempt: Int) async throws {
        let ceiling = retry.ceiling(afterAttempt: attempt)
        let wait = ceiling * environment.random()
        if wait > .zero { try await environment.clock.sleep(for: wait) }
    }

    /// Stores a dead letter; `span` is the last attempt's, when the record is traced.
    func deadLetter(
        _ record: CycleRecord, reason: String, attempts: Int, invalidInput: Bool, span: TraceContext? = nil, logger: Logger? = nil
    ) async -> RecordOutcome {
        let logger = logger ?? self.logger
        do {
            try await deadLetters.deadLetter(
                DeadLetter(
                    record: record, reason: reason, attempts: attempts, invalidInput: invalidInput,
                    traceparent: span?.traceParentHeaderValue, tracestate: span?.traceStateHeaderValue))
            logger.warning("dead-lettered", metadata: ["position": "\(record.position)", "reason": "\(reason)"])
            return .deadLettered(invalidInput: invalidInput)
        } catch {
            deadLetterErrors.record(error)
            logger.error(
                "dead letter not stored; record left for redelivery",
                metadata: ["position": "\(record.position)", "error": "\(error)"])
            return .notDone(.deadLetterFailed, processingFailed: !invalidInput)
        }
    }
}

/// The first dead-letter error of a cycle, and whether the sink said it is unusable.
final class DeadLetterErrors: Sendable {
    private let state = Mutex<(first: String?, unusable: String?)>((nil, nil))

    var first: String? { state.withLock { $0.first } }
    var unusable: String? { state.withLock { $0.unusable } }

    func record(_ error: any Error) {
        state.withLock { state in
            if state.first == nil { state.first = "\(error)" }
            if state.unusable == nil, let unusable = error as? SinkUnusable { state.unusable = unusable.reason }
        }
    }
}

/// What a cycle's workers share: the next run to take, and whether one waited for a slot.
private final class WorkerShare: Sendable {
    let next = Atomic(0)
    let waited = Atomic(false)
}

/// Counts key runs in flight and remembers the peak.
final class InFlightGauge: Sendable {
    private let counts = Mutex<(current: Int, peak: Int)>((0, 0))

    var peak: Int { counts.withLock { $0.peak } }

    /// A run started.
    func enter() {
        counts.withLock { c in
            c.current += 1
            c.peak = max(c.peak, c.current)
        }
    }

    /// A run ended.
    func leave() { counts.withLock { $0.current -= 1 } }
}

/// Where a worker's stretch starts, and how it ended.
private enum Stretch {
    struct Start: Sendable {
        /// Whether the worker holds a slot of the shared limit.
        var holding: Bool
        /// The run a deadline interrupted (its index in the plan), and how far it got.
        var interrupted: (run: Int, progress: RunProgress)?
    }

    struct End: Sendable {
        var results: [RecordResult]
        /// Where the next stretch starts; nil when no run is left.
        var next: Start?
    }
}

/// How far a key run got: its records' results so far, and the attempts of the next one
/// when a deadline interrupted them.
private struct RunProgress: Sendable {
    var results: [RecordResult] = []
    var pending: Attempts?
}

private enum RunStep: Sendable {
    case finished([RecordResult])
    case interrupted(RunProgress)
}

/// A record's attempts so far, when the last one passed its deadline.
private struct Attempts: Sendable {
    let attempt: Int
    let timeouts: Int
    let trace: RecordTrace?
    let span: TraceContext?
    let failure: ProcessingError
}

private enum RecordStep: Sendable {
    case finished(RecordResult)
    case interrupted(Attempts)
}
