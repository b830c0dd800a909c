import Foundation
import Logging

/// The conductor: takes cycles of change events, processes each with bounded
/// parallelism through an ``EventProcessor``, dead-letters what fails for good,
/// publishes telemetry, tunes its own concurrency and watches its health.
///
/// It knows nothing of Kafka: cycles come in as values, and each result says per
/// partition which offsets are done, so the caller commits exactly those.
public actor RegenerationOrchestrator {
    enum Phase { case idle, running, stopping }

    /// The validated configuration.
    public nonisolated let config: OrchestratorConfig
    let processor: any EventProcessor
    let telemetry: any TelemetrySink
    let deadLetters: any DeadLetterSink
    let environment: OrchestrationEnvironment
    let logger: Logger
    let breaker: CircuitBreaker
    let limiter: RateLimiter
    /// Times every attempt out after `eventTimeoutMs`, with one timer for all of them.
    let watchdog: DeadlineWatchdog
    /// The concurrency limit, shared by the cycles in flight.
    let slots: ConcurrencySlots
    let recorder: StatsRecorder
    let metrics: OrchestrationMetrics
    var tuner: AdaptiveTuner
    var phase = Phase.idle
    var healthTask: Task<Void, Never>?
    var healthBaseline = OrchestrationStats()
    var cyclesInFlight = 0
    /// Cycle completions failed in a row (the processor's completeCycle threw).
    var completionFailures = 0
    /// Cycles in a row in which some dead letter could not be stored.
    var deadLetterFailures = 0
    var idleWaiters: [CheckedContinuation<Void, Never>] = []

    /// Creates an orchestrator; it processes nothing until ``start()``.
    /// - Throws: `ConfigurationErrors` naming every invalid field.
    public init(
        config: OrchestratorConfig, processor: any EventProcessor, telemetry: any TelemetrySink,
        deadLetters: any DeadLetterSink, environment: OrchestrationEnvironment = OrchestrationEnvironment(),
        logger: Logger = Logger(label: "regen.orchestrator")
    ) throws {
        try config.validate()
        self.config = config
        self.processor = processor
        self.telemetry = telemetry
        self.deadLetters = deadLetters
        self.environment = environment
        self.logger = logger
        breaker = CircuitBreaker(policy: config.breaker, clock: environment.clock)
        metrics = OrchestrationMetrics(factory: environment.metrics)
        limiter = RateLimiter(policy: config.rateLimit, clock: environment.clock, waits: metrics.rateLimiterWaits)
        watchdog = DeadlineWatchdog(limit: .milliseconds(config.eventTimeoutMs))
        tuner = AdaptiveTuner(policy: config.adaptive, targetCycleMs: config.targetCycleMs, initial: config.concurrency)
        if !config.adaptiveOptimization {
            tuner = AdaptiveTuner(
                policy: AdaptivePolicy(minConcurrency: config.concurrency, maxConcurrency: config.concurrency),
                targetCycleMs: config.targetCycleMs, initial: config.concurrency)
        }
        recorder = StatsRecorder(concurrency: tuner.concurrency)
        slots = ConcurrencySlots(limit: tuner.concurrency)
    }

    /// Whether cycles are accepted.
    public var isRunning: Bool { phase == .running }

    /// A snapshot of the statistics; safe from any task, never waits for a cycle.
    public nonisolated func stats() -> OrchestrationStats { recorder.snapshot }

    /// The circuit breaker's state.
    public nonisolated var breakerState: CircuitBreaker.State { breaker.state }

    /// Events being processed now, over all cycles in flight: one per key run holding a
    /// concurrency slot (at most the concurrency limit).
    public nonisolated var eventsInFlight: Int { slots.inUse }

    /// Starts accepting cycles, emits `regeneration_started` with the configuration and
    /// starts the health loop (unless its interval is 0).
    /// - Throws: `OrchestrationError.alreadyRunning` when running or stopping.
    public func start() async throws {
        guard phase == .idle else { throw OrchestrationError.alreadyRunning() }
        phase = .running
        healthBaseline = recorder.snapshot
        logger.info(
            "orchestrator started",
            metadata: [
                "concurrency": "\(tuner.concurrency)", "targetCycleMs": "\(config.targetCycleMs)",
                "adaptive": "\(config.adaptiveOptimization)", "healthCheckIntervalSecs": "\(config.healthCheckIntervalSecs)",
            ])
        await emit(.regenerationStarted, component: "orchestrator", data: configurationSnapshot())
        if config.healthCheckIntervalSecs > 0 { healthTask = makeHealthLoop() }
    }

    /// Stops gracefully: refuses new cycles, waits for the cycles in flight, stops the
    /// health loop, and emits `regeneration_completed` with the final statistics.
    /// Leaves no task behind. Does nothing when not running.
    public func stop() async {
        guard phase == .running else { return }
        phase = .stopping
        if cyclesInFlight > 0 {
            await withCheckedContinuation { idleWaiters.append($0) }
        }
        healthTask?.cancel()
        await healthTask?.value
        healthTask = nil
        let final = recorder.snapshot
        await emit(.regenerationCompleted, component: "orchestrator", data: statsData(final), tags: ["scope": "orchestrator"])
        logger.info("orchestrator stopped", metadata: ["cycles": "\(final.totalCycles)", "events": "\(final.eventsProcessed)"])
        phase = .idle
    }

    func cycleStarted() throws {
        guard phase == .running else { throw OrchestrationError.notRunning() }
        cyclesInFlight += 1
    }

    func cycleEnded() {
        cyclesInFlight -= 1
        guard cyclesInFlight == 0 else { return }
        let waiters = idleWaiters
        idleWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }
}
