import Foundation

/// Operational parameters of the orchestrator. Defaults follow the seed contract;
/// `Codable` with every key optional, so a file names only what it changes.
public struct OrchestratorConfig: Sendable, Hashable, Codable {
    /// Run continuously without a human in the loop.
    public var autonomous: Bool
    /// Key groups processed at once (the starting point when adaptive optimization is on).
    public var concurrency: Int
    /// Target cycle duration in milliseconds; longer cycles warn and trigger tuning.
    public var targetCycleMs: Int
    /// Tune concurrency with AIMD.
    public var adaptiveOptimization: Bool
    /// Seconds between health checks; 0 disables the health loop.
    public var healthCheckIntervalSecs: Double
    /// Per-attempt processing deadline in milliseconds.
    public var eventTimeoutMs: Int
    /// Cycle size limits, used by the cycle source.
    public var cycle: CycleLimits
    /// Retry with exponential backoff and full jitter.
    public var retry: RetryPolicy
    /// Circuit breaker around the processor.
    public var breaker: BreakerPolicy
    /// Token bucket on dispatch.
    public var rateLimit: RateLimitPolicy
    /// AIMD bounds and triggers.
    public var adaptive: AdaptivePolicy
    /// Health thresholds.
    public var health: HealthPolicy
    /// Records larger than this go to the dead-letter sink unparsed.
    public var maxEventBytes: Int

    /// Creates a configuration; every argument has the seed's default.
    public init(
        autonomous: Bool = true, concurrency: Int = ProcessInfo.processInfo.activeProcessorCount,
        targetCycleMs: Int = 30_000, adaptiveOptimization: Bool = true, healthCheckIntervalSecs: Double = 60,
        eventTimeoutMs: Int = 30_000, cycle: CycleLimits = CycleLimits(), retry: RetryPolicy = RetryPolicy(),
        breaker: BreakerPolicy = BreakerPolicy(), rateLimit: RateLimitPolicy = RateLimitPolicy(),
        adaptive: AdaptivePolicy = AdaptivePolicy(), health: HealthPolicy = HealthPolicy(),
        maxEventBytes: Int = ChangeEvent.defaultMaxBytes
    ) {
        self.autonomous = autonomous
        self.concurrency = concurrency
        self.targetCycleMs = targetCycleMs
        self.adaptiveOptimization = adaptiveOptimization
        self.healthCheckIntervalSecs = healthCheckIntervalSecs
        self.eventTimeoutMs = eventTimeoutMs
        self.cycle = cycle
        self.retry = retry
        self.breaker = breaker
        self.rateLimit = rateLimit
        self.adaptive = adaptive
        self.health = health
        self.maxEventBytes = maxEventBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = OrchestratorConfig()
        self.init(
            autonomous: try c.value(.autonomous, or: d.autonomous), concurrency: try c.value(.concurrency, or: d.concurrency),
            targetCycleMs: try c.value(.targetCycleMs, or: d.targetCycleMs),
            adaptiveOptimization: try c.value(.adaptiveOptimization, or: d.adaptiveOptimization),
            healthCheckIntervalSecs: try c.value(.healthCheckIntervalSecs, or: d.healthCheckIntervalSecs),
            eventTimeoutMs: try c.value(.eventTimeoutMs, or: d.eventTimeoutMs), cycle: try c.value(.cycle, or: d.cycle),
            retry: try c.value(.retry, or: d.retry), breaker: try c.value(.breaker, or: d.breaker),
            rateLimit: try c.value(.rateLimit, or: d.rateLimit), adaptive: try c.value(.adaptive, or: d.adaptive),
            health: try c.value(.health, or: d.health), maxEventBytes: try c.value(.maxEventBytes, or: d.maxEventBytes))
    }

    /// Rejects impossible values.
    /// - Throws: `ConfigurationErrors` listing every field at fault with its value and what is allowed.
    public func validate() throws {
        var check = ConfigurationChecker()
        check.require(concurrency >= 1, "concurrency", concurrency, "an integer >= 1")
        check.require(targetCycleMs >= 1, "targetCycleMs", targetCycleMs, "an integer >= 1 (milliseconds)")
        check.require(
            healthCheckIntervalSecs >= 0 && healthCheckIntervalSecs.isFinite, "healthCheckIntervalSecs",
            healthCheckIntervalSecs, "a number >= 0 (0 disables the health loop)")
        check.require(eventTimeoutMs >= 1, "eventTimeoutMs", eventTimeoutMs, "an integer >= 1 (milliseconds)")
        check.require(maxEventBytes >= 1, "maxEventBytes", maxEventBytes, "an integer >= 1")
        cycle.check(&check)
        retry.check(&check)
        breaker.check(&check)
        rateLimit.check(&check)
        adaptive.check(&check)
        health.check(&check)
        if adaptiveOptimization {
            check.require(
                (adaptive.minConcurrency...max(adaptive.minConcurrency, adaptive.maxConcurrency)).contains(concurrency),
                "concurrency", concurrency,
                "within adaptive.minConcurrency...adaptive.maxConcurrency (\(adaptive.minConcurrency)...\(adaptive.maxConcurrency)) when adaptiveOptimization is on")
        }
        guard check.errors.isEmpty else { throw ConfigurationErrors(errors: check.errors) }
    }
}
