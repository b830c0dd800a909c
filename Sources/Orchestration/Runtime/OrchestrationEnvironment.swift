import CoreMetrics
import Foundation

/// Monotonic time and sleeping, injected so tests drive time by hand.
public protocol OrchestrationClock: Sendable {
    /// Time since an arbitrary fixed origin; never goes backwards.
    var now: Duration { get }
    /// Suspends for `duration`.
    /// - Throws: `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The real monotonic clock.
public struct SystemClock: OrchestrationClock {
    private let origin = ContinuousClock.now
    /// Creates a clock whose origin is now.
    public init() {}
    public var now: Duration { ContinuousClock.now - origin }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// Everything the orchestrator reads from the outside world besides its inputs.
public struct OrchestrationEnvironment: Sendable {
    /// Monotonic time and sleeping.
    public var clock: any OrchestrationClock
    /// Wall-clock time for telemetry timestamps.
    public var wallClock: @Sendable () -> Date
    /// A uniform random number in `0 ..< 1`, for backoff jitter.
    public var random: @Sendable () -> Double
    /// Resident memory of this process in bytes, when known.
    public var residentMemory: @Sendable () -> UInt64?
    /// Work waiting upstream (e.g. consumer lag), when known; the health loop alerts when
    /// work is pending but no cycle completes.
    public var pendingWork: @Sendable () async -> Int64?
    /// Name of this instance in telemetry.
    public var instance: String
    /// Where metrics go: the process's bootstrapped backend by default (a no-op until one
    /// is bootstrapped); tests pass swift-metrics' `TestMetrics`.
    public var metrics: any MetricsFactory

    /// Creates an environment; every argument defaults to the real thing.
    public init(
        clock: any OrchestrationClock = SystemClock(), wallClock: @escaping @Sendable () -> Date = { Date() },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        residentMemory: @escaping @Sendable () -> UInt64? = ProcessMemory.resident,
        pendingWork: @escaping @Sendable () async -> Int64? = { nil },
        instance: String = ProcessInfo.processInfo.hostName + "-\(ProcessInfo.processInfo.processIdentifier)",
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.clock = clock
        self.wallClock = wallClock
        self.random = random
        self.residentMemory = residentMemory
        self.pendingWork = pendingWork
        self.instance = instance
        self.metrics = metrics
    }
}

/// Reads this process's resident set size.
public enum ProcessMemory {
    /// Resident memory in bytes from `/proc/self/statm`; nil where there is no procfs.
    @Sendable public static func resident() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return nil }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
