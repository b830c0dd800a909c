import CoreMetrics
import Synchronization

/// A token bucket: `eventsPerSecond` tokens a second, at most `burst` saved up. Callers
/// that find the bucket empty reserve a future token and sleep until it is due, so the
/// rate holds however many tasks ask at once.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updatedAt: Duration
    }

    private let rate: Double
    private let burst: Double
    private let clock: any OrchestrationClock
    private let bucket: Mutex<Bucket>
    private let waits: Counter?

    /// Creates a full bucket; a rate of 0 never waits. `waits` counts the acquisitions
    /// that had to wait.
    public init(policy: RateLimitPolicy, clock: any OrchestrationClock, waits: Counter? = nil) {
        self.waits = waits
        rate = policy.eventsPerSecond
        burst = Double(policy.burst)
        self.clock = clock
        bucket = Mutex(Bucket(tokens: Double(policy.burst), updatedAt: clock.now))
    }

    /// Waits until one event may start.
    /// - Throws: `CancellationError` when cancelled while waiting.
    public func acquire() async throws {
        guard rate > 0 else { return }
        let wait = reserve()
        guard wait > .zero else { return }
        waits?.increment()
        try await clock.sleep(for: wait)
    }

    /// Takes a token (possibly one not yet earned) and returns how long until it is due.
    func reserve() -> Duration {
        bucket.withLock { b in
            let now = clock.now
            let elapsed = (now - b.updatedAt).seconds
            b.tokens = min(burst, b.tokens + elapsed * rate)
            b.updatedAt = now
            b.tokens -= 1
            return b.tokens >= 0 ? .zero : .nanoseconds(Int64((-b.tokens / rate) * 1e9))
        }
    }
}
