import Foundation

/// How a cycle is cut from the input stream.
public struct CycleLimits: Sendable, Hashable, Codable {
    /// At most this many records per cycle.
    public var maxEvents: Int
    /// At most this long polling for a cycle, in milliseconds.
    public var maxWaitMs: Int

    /// Creates cycle limits.
    public init(maxEvents: Int = 1000, maxWaitMs: Int = 1000) {
        self.maxEvents = maxEvents
        self.maxWaitMs = maxWaitMs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CycleLimits()
        self.init(maxEvents: try c.value(.maxEvents, or: d.maxEvents), maxWaitMs: try c.value(.maxWaitMs, or: d.maxWaitMs))
    }

    func check(_ check: inout ConfigurationChecker) {
        check.require(maxEvents >= 1, "cycle.maxEvents", maxEvents, "an integer >= 1")
        check.require(maxWaitMs >= 1, "cycle.maxWaitMs", maxWaitMs, "an integer >= 1 (milliseconds)")
    }
}

/// Retry with exponential backoff and full jitter: attempt n waits a random time in
/// `0 ... min(maxBackoffMs, initialBackoffMs * multiplier^(n-1))`.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Attempts per event, the first included.
    public var maxAttempts: Int
    /// Backoff ceiling after the first failure, in milliseconds.
    public var initialBackoffMs: Int
    /// Backoff ceiling cap, in milliseconds.
    public var maxBackoffMs: Int
    /// Growth of the ceiling per attempt.
    public var multiplier: Double

    /// Creates a retry policy.
    public init(maxAttempts: Int = 5, initialBackoffMs: Int = 100, maxBackoffMs: Int = 10_000, multiplier: Double = 2) {
        self.maxAttempts = maxAttempts
        self.initialBackoffMs = initialBackoffMs
        self.maxBackoffMs = maxBackoffMs
        self.multiplier = multiplier
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RetryPolicy()
        self.init(
            maxAttempts: try c.value(.maxAttempts, or: d.maxAttempts),
            initialBackoffMs: try c.value(.initialBackoffMs, or: d.initialBackoffMs),
            maxBackoffMs: try c.value(.maxBackoffMs, or: d.maxBackoffMs), multiplier: try c.value(.multiplier, or: d.multiplier))
    }

    /// The backoff ceiling before attempt `attempt + 1` (after `attempt` failures).
    public func ceiling(afterAttempt attempt: Int) -> Duration {
        let grown = Double(initialBackoffMs) * pow(multiplier, Double(max(0, attempt - 1)))
        return .milliseconds(Int(min(Double(maxBackoffMs), grown)))
    }

    func check(_ check: inout ConfigurationChecker) {
        check.require(maxAttempts >= 1, "retry.maxAttempts", maxAttempts, "an integer >= 1")
        check.require(initialBackoffMs >= 0, "retry.initialBackoffMs", initialBackoffMs, "an integer >= 0 (milliseconds)")
        check.require(
            maxBackoffMs >= initialBackoffMs, "retry.maxBackoffMs", maxBackoffMs, ">= retry.initialBackoffMs (\(initialBackoffMs))")
        check.require(multiplier >= 1 && multiplier.isFinite, "retry.multiplier", multiplier, "a number >= 1")
    }
}

/// The circuit breaker: opens when the failure ratio over the last `windowSize` processor
/// attempts reaches `failureRatio` (after at least `minimumCalls`), probes after a cooldown
/// that doubles on each failed probe up to `maxCooldownMs`.
public struct BreakerPolicy: Sendable, Hashable, Codable {
    /// Whether the breaker is used at all.
    public var enabled: Bool
    /// Attempts in the rolling window.
    public var windowSize: Int
    /// Attempts needed in the window before the breaker may open.
    public var minimumCalls: Int
    /// Failure ratio that opens it, in (0, 1].
    public var failureRatio: Double
    /// First cooldown before a probe, in milliseconds.
    public var cooldownMs: Int
    /// Longest cooldown, in milliseconds.
    public var maxCooldownMs: Int

    /// Creates a breaker policy.
    public init(
        enabled: Bool = true, windowSize: Int = 50, minimumCalls: Int = 20, failureRatio: Double = 0.5,
        cooldownMs: Int = 5_000, maxCooldownMs: Int = 300_000
    ) {
        self.enabled = enabled
        self.windowSize = windowSize
        self.minimumCalls = minimumCalls
        self.failureRatio = failureRatio
        self.cooldownMs = cooldownMs
        self.maxCooldownMs = maxCooldownMs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BreakerPolicy()
        self.init(
            enabled: try c.value(.enabled, or: d.enabled), windowSize: try c.value(.windowSize, or: d.windowSize),
            minimumCalls: try c.value(.minimumCalls, or: d.minimumCalls), failureRatio: try c.value(.failureRatio, or: d.failureRatio),
            cooldownMs: try c.value(.cooldownMs, or: d.cooldownMs), maxCooldownMs: try c.value(.maxCooldownMs, or: d.maxCooldownMs))
    }

    func check(_ check: inout ConfigurationChecker) {
        check.require(windowSize >= 1, "breaker.windowSize", windowSize, "an integer >= 1")
        check.require(
            (1...max(1, windowSize)).contains(minimumCalls), "breaker.minimumCalls", minimumCalls,
            "an integer in 1...breaker.windowSize (\(windowSize))")
        check.require(failureRatio > 0 && failureRatio <= 1, "breaker.failureRatio", failureRatio, "a number in (0, 1]")
        check.require(cooldownMs >= 1, "breaker.cooldownMs", cooldownMs, "an integer >= 1 (milliseconds)")
        check.require(maxCooldownMs >= cooldownMs, "breaker.maxCooldownMs", maxCooldownMs, ">= breaker.cooldownMs (\(cooldownMs))")
    }
}

/// A token bucket on dispatch.
public struct RateLimitPolicy: Sendable, Hashable, Codable {
    /// Events per second; 0 means unlimited.
    public var eventsPerSecond: Double
    /// Bucket size: events that may start at once after a quiet period.
    public var burst: Int

    /// Creates a rate limit.
    public init(eventsPerSecond: Double = 0, burst: Int = 100) {
        self.eventsPerSecond = eventsPerSecond
        self.burst = burst
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RateLimitPolicy()
        self.init(eventsPerSecond: try c.value(.eventsPerSecond, or: d.eventsPerSecond), burst: try c.value(.burst, or: d.burst))
    }

    func check(_ check: inout ConfigurationChecker) {
        check.require(
            eventsPerSecond >= 0 && eventsPerSecond.isFinite, "rateLimit.eventsPerSecond", eventsPerSecond,
            "a number >= 0 (0 = unlimited)")
        check.require(burst >= 1, "rateLimit.burst", burst, "an integer >= 1")
    }
}

/// AIMD on concurrency: add `increaseStep` when cycles are under target and groups
/// waited for a slot; multiply by `decreaseFactor` when over target or when failures or
/// timeouts rise. At most one change every `evaluateEveryCycles` cycles.
public struct AdaptivePolicy: Sendable, Hashable, Codable {
    /// Lowest concurrency.
    public var minConcurrency: Int
    /// Highest concurrency.
    public var maxConcurrency: Int
    /// Cycles between changes (throttle).
    public var evaluateEveryCycles: Int
    /// Additive increase.
    public var increaseStep: Int
    /// Multiplicative decrease, in (0, 1).
    public var decreaseFactor: Double
    /// Failure ratio in a cycle that triggers a decrease.
    public var failureRateThreshold: Double
    /// Timeout ratio in a cycle that triggers a decrease.
    public var timeoutRateThreshold: Double

    /// Creates adaptive bounds.
    public init(
        minConcurrency: Int = 1, maxConcurrency: Int = max(8, 4 * ProcessInfo.processInfo.activeProcessorCount),
        evaluateEveryCycles: Int = 3, increaseStep: Int = 1, decreaseFactor: Double = 0.5,
        failureRateThreshold: Double = 0.1, timeoutRateThreshold: Double = 0.05
    ) {
        self.minConcurrency = minConcurrency
        self.maxConcurrency = maxConcurrency
        self.evaluateEveryCycles = evaluateEveryCycles
        self.increaseStep = increaseStep
        self.decreaseFactor = decreaseFactor
        self.failureRateThreshold = failureRateThreshold
        self.timeoutRateThreshold = timeoutRateThreshold
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AdaptivePolicy()
        self.init(
            minConcurrency: try c.value(.minConcurrency, or: d.minConcurrency),
            maxConcurrency: try c.value(.maxConcurrency, or: d.maxConcurrency),
            evaluateEveryCycles: try c.value(.evaluateEveryCycles, or: d.evaluateEveryCycles),
            increaseStep: try c.value(.increaseStep, or: d.increaseStep), decreaseFactor: try c.value(.decreaseFactor, or: d.decreaseFactor),
            failureRateThreshold: try c.value(.failureRateThreshold, or: d.failureRateThreshold),
            timeoutRateThreshold: try c.value(.timeoutRateThreshold, or: d.timeoutRateThreshold))
    }

    func check(_ check: inout ConfigurationChecker) {
        check.require(minConcurrency >= 1, "adaptive.minConcurrency", minConcurrency, "an integer >= 1")
        check.require(
            maxConcurrency >= minConcurrency, "adaptive.maxConcurrency", maxConcurrency,
            ">= adaptive.minConcurrency (\(minConcurrency))")
        check.require(evaluateEveryCycles >= 1, "adaptive.evaluateEveryCycles", evaluateEveryCycles, "an integer >= 1")
        check.require(increaseStep >= 1, "adaptive.increaseStep", increaseStep, "an integer >= 1")
        check.require(decreaseFactor > 0 && decreaseFactor < 1, "adaptive.decreaseFactor", decreaseFactor, "a number in (0, 1)")
        check.require(
            (0...1).contains(failureRateThreshold), "adaptive.failureRateThreshold", failureRateThreshold, "a number in [0, 1]")
        check.require(
            (0...1).contains(timeoutRateThreshold), "adaptive.timeoutRateThreshold", timeoutRateThreshold, "a number in [0, 1]")
    }
}

/// Health-check thresholds.
public struct HealthPolicy: Sendable, Hashable, Codable {
    /// A success rate below this warns.
    public var minSuccessRate: Double
    /// Resident memory above this alerts, in bytes; 0 disables the check.
    public var memoryLimitBytes: UInt64

    /// Creates health thresholds.
    public init(minSuccessRate: Double = 0.9, memoryLimitBytes: UInt64 = 0) {
        self.minSuccessRate = minSuccessRate
        self.memoryLimitBytes = memoryLimitBytes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = HealthPolicy()
        self.init(
            minSuccessRate: try c.value(.minSuccessRate, or: d.minSuccessRate),
            memoryLimitBytes: try c.value(.memoryLimitBytes, or: d.memoryLimitBytes))
    }

    func check(_ check: inout ConfigurationChecker) {
        check.require((0...1).contains(minSuccessRate), "health.minSuccessRate", minSuccessRate, "a number in [0, 1]")
    }
}
