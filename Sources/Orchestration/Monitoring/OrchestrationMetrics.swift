import CoreMetrics

/// What the orchestrator counts, through the swift-metrics API only: whichever backend
/// the process bootstrapped (the service uses Prometheus) or the factory the environment
/// names (tests use swift-metrics' `TestMetrics`). Names follow Prometheus conventions:
/// counters end in `_total`, durations are in seconds. The README lists them all.
struct OrchestrationMetrics: Sendable {
    /// Records by how their cycle left them.
    let succeeded: Counter
    let deadLettered: Counter
    let notDone: Counter
    /// Dead letters by reason class.
    let invalidInput: Counter
    let processingFailed: Counter
    let attempts: Counter
    let retries: Counter
    let timeouts: Counter
    let cycles: Counter
    let cycleDuration: Timer
    let cycleEvents: Recorder
    let rateLimiterWaits: Counter
    let invalidTraceparents: Counter

    init(factory: any MetricsFactory) {
        func events(_ outcome: String) -> Counter {
            Counter(label: "regen_events_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        func deadLetters(_ reason: String) -> Counter {
            Counter(label: "regen_dead_letters_total", dimensions: [("reason", reason)], factory: factory)
        }
        succeeded = events("succeeded")
        deadLettered = events("dead_lettered")
        notDone = events("not_done")
        invalidInput = deadLetters("invalid_input")
        processingFailed = deadLetters("processing_failed")
        attempts = Counter(label: "regen_attempts_total", factory: factory)
        retries = Counter(label: "regen_retries_total", factory: factory)
        timeouts = Counter(label: "regen_attempt_timeouts_total", factory: factory)
        cycles = Counter(label: "regen_cycles_total", factory: factory)
        cycleDuration = Timer(label: "regen_cycle_duration_seconds", factory: factory)
        cycleEvents = Recorder(label: "regen_cycle_events", aggregate: true, factory: factory)
        rateLimiterWaits = Counter(label: "regen_rate_limiter_waits_total", factory: factory)
        invalidTraceparents = Counter(label: "regen_traceparent_invalid_total", factory: factory)
    }

    /// Counts one finished cycle.
    func record(_ execution: ParallelExecution, attempts: Int) {
        cycles.increment()
        cycleDuration.recordNanoseconds(Int64(execution.durationMs * 1_000_000))
        cycleEvents.record(execution.tasksExecuted)
        succeeded.increment(by: execution.tasksSucceeded)
        deadLettered.increment(by: execution.deadLettered)
        notDone.increment(by: execution.notDone)
        invalidInput.increment(by: execution.invalidInput)
        processingFailed.increment(by: execution.deadLettered - execution.invalidInput)
        self.attempts.increment(by: attempts)
        retries.increment(by: execution.retries)
        timeouts.increment(by: execution.timeouts)
    }
}
