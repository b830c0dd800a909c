import Foundation
import Orchestration
import Synchronization

/// A clock that never really waits: a sleep shorter than `horizon` moves `now` forward by
/// its duration and returns at once, and is recorded; a sleep at or past `horizon`
/// (a deadline that should not fire in the test) waits until the task is cancelled.
/// `advance(by:)` moves time between cycles (breaker cooldowns, token refills).
final class FastForwardClock: OrchestrationClock {
    private struct State {
        var now: Duration = .zero
        var sleeps: [Duration] = []
    }

    private let state = Mutex(State())
    let horizon: Duration

    init(horizon: Duration = .seconds(3600)) { self.horizon = horizon }

    var now: Duration { state.withLock { $0.now } }
    var sleeps: [Duration] { state.withLock { $0.sleeps } }

    func advance(by duration: Duration) { state.withLock { $0.now += duration } }

    func sleep(for duration: Duration) async throws {
        guard duration < horizon else {
            while !Task.isCancelled { await Task.yield(); try? await Task.sleep(for: .milliseconds(1)) }
            throw CancellationError()
        }
        try Task.checkCancellation()
        state.withLock {
            $0.now += duration
            $0.sleeps.append(duration)
        }
        await Task.yield()
    }
}

/// A clock whose sleepers wait until the test advances time past their deadline.
final class ManualClock: OrchestrationClock {
    private struct Sleeper {
        let id: Int
        let deadline: Duration
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Duration = .zero
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    var now: Duration { state.withLock { $0.now } }
    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    func sleep(for duration: Duration) async throws {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = state.withLock { s -> Bool in
                    if duration <= .zero { return true }
                    s.sleepers.append(Sleeper(id: id, deadline: s.now + duration, continuation: continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { s -> Sleeper? in
                guard let index = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return s.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    func advance(by duration: Duration) {
        let due = state.withLock { s -> [Sleeper] in
            s.now += duration
            let due = s.sleepers.filter { $0.deadline <= s.now }
            s.sleepers.removeAll { $0.deadline <= s.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits (in real time, briefly) until `count` tasks sleep on this clock.
    func waitForSleepers(_ count: Int, within limit: Duration = .seconds(10)) async -> Bool {
        let end = ContinuousClock.now + limit
        while sleeperCount < count && ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(2)) }
        return sleeperCount >= count
    }
}

/// Keeps every telemetry event.
final class RecordingTelemetry: TelemetrySink {
    private let events = Mutex<[TelemetryEvent]>([])
    var all: [TelemetryEvent] { events.withLock { $0 } }
    func emit(_ event: TelemetryEvent) async { events.withLock { $0.append(event) } }
    func of(_ type: TelemetryEventType) -> [TelemetryEvent] { all.filter { $0.eventType == type } }
    func tagged(_ type: TelemetryEventType, _ key: String, _ value: String) -> [TelemetryEvent] {
        of(type).filter { $0.tags[key] == value }
    }
}

/// Keeps every dead letter; fails while `failing` is set.
final class RecordingDeadLetters: DeadLetterSink {
    private let letters = Mutex<[DeadLetter]>([])
    private let failingFlag = Mutex(false)
    var all: [DeadLetter] { letters.withLock { $0 } }
    var failing: Bool {
        get { failingFlag.withLock { $0 } }
        set { failingFlag.withLock { $0 = newValue } }
    }

    struct Unavailable: Error {}

    func deadLetter(_ letter: DeadLetter) async throws {
        if failing { throw Unavailable() }
        letters.withLock { $0.append(letter) }
    }
}

/// A processor made of a closure.
struct ClosureProcessor: EventProcessor {
    let body: @Sendable (ChangeEvent, EventContext) async throws -> ProcessingReport
    init(_ body: @escaping @Sendable (ChangeEvent, EventContext) async throws -> ProcessingReport) { self.body = body }
    func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport {
        try await body(event, context)
    }
}

/// Counts calls in flight and remembers the peak, and the order events were seen in.
final class ProcessorProbe: Sendable {
    private let state = Mutex<(current: Int, peak: Int, seen: [EventContext])>((0, 0, []))
    var peak: Int { state.withLock { $0.peak } }
    var seen: [EventContext] { state.withLock { $0.seen } }
    func enter(_ context: EventContext) {
        state.withLock { s in
            s.current += 1
            s.peak = max(s.peak, s.current)
            s.seen.append(context)
        }
    }
    func leave() { state.withLock { $0.current -= 1 } }
}

/// Builds records and cycles.
enum Fixtures {
    /// The inputs of the kept fuzz corpus `name` (`Fuzz/corpus/<name>`).
    static func fuzzCorpus(_ name: String) throws -> [URL] {
        let directory = URL(filePath: #filePath).deletingLastPathComponent().appending(path: "../../Fuzz/corpus/\(name)").standardized
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
    }

    static func eventJSON(id: String, subject: String, type: String = "node_updated") -> [UInt8] {
        Array(#"{"id":"\#(id)","change_type":"\#(type)","timestamp":"2025-10-10T12:00:00Z","subject":"\#(subject)","properties":{"n":1},"source":"test","metadata":{}}"#.utf8)
    }

    static func record(
        topic: String = "changes", partition: Int = 0, offset: Int64, subject: String, priority: Int? = nil,
        value: [UInt8]? = nil
    ) -> CycleRecord {
        var headers: [(key: String, value: [UInt8]?)] = []
        if let priority { headers.append(("priority", Array(String(priority).utf8))) }
        return CycleRecord(
            position: SourcePosition(topic: topic, partition: partition, offset: offset), key: Array(subject.utf8),
            value: value ?? eventJSON(id: "\(topic)-\(partition)-\(offset)", subject: subject), headers: headers)
    }

    /// `count` records over `partitions` partitions and `keys` subjects, offsets from 0 per partition.
    static func cycle(count: Int, partitions: Int = 4, keys: Int = 10) -> Cycle {
        var next = [Int64](repeating: 0, count: partitions)
        let records = (0..<count).map { index -> CycleRecord in
            let key = index % keys
            let partition = key % partitions
            defer { next[partition] += 1 }
            return record(partition: partition, offset: next[partition], subject: "node-\(key)")
        }
        return Cycle(records: records)
    }

    static func config(
        concurrency: Int = 4, maxAttempts: Int = 3, eventTimeoutMs: Int = 3_600_000, breaker: BreakerPolicy = BreakerPolicy(enabled: false),
        adaptive: Bool = false, targetCycleMs: Int = 30_000, health: Double = 0
    ) -> OrchestratorConfig {
        OrchestratorConfig(
            concurrency: concurrency, targetCycleMs: targetCycleMs, adaptiveOptimization: adaptive,
            healthCheckIntervalSecs: health, eventTimeoutMs: eventTimeoutMs,
            retry: RetryPolicy(maxAttempts: maxAttempts, initialBackoffMs: 100, maxBackoffMs: 1000), breaker: breaker,
            adaptive: AdaptivePolicy(minConcurrency: 1, maxConcurrency: 16, evaluateEveryCycles: 1))
    }

    static func environment(clock: any OrchestrationClock = FastForwardClock(), random: Double = 0.5) -> OrchestrationEnvironment {
        OrchestrationEnvironment(
            clock: clock, wallClock: { Date(timeIntervalSince1970: 1_760_000_000) }, random: { random },
            residentMemory: { 100 }, pendingWork: { 0 }, instance: "test-instance")
    }
}

/// An orchestrator with recording sinks, started.
struct Harness {
    let orchestrator: RegenerationOrchestrator
    let telemetry = RecordingTelemetry()
    let deadLetters = RecordingDeadLetters()

    init(
        config: OrchestratorConfig = Fixtures.config(), environment: OrchestrationEnvironment = Fixtures.environment(),
        processor: any EventProcessor = ClosureProcessor { _, _ in .none }
    ) async throws {
        orchestrator = try RegenerationOrchestrator(
            config: config, processor: processor, telemetry: telemetry, deadLetters: deadLetters,
            environment: environment)
        try await orchestrator.start()
    }
}
