/// Receives telemetry. Emitting must not fail the caller: a sink buffers, retries or
/// counts what it drops.
public protocol TelemetrySink: Sendable {
    /// Publishes one event.
    func emit(_ event: TelemetryEvent) async
}

/// A record that could not be processed, with why.
public struct DeadLetter: Sendable, Hashable {
    /// The original record (key, value, headers, position).
    public var record: CycleRecord
    /// Why it is dead.
    public var reason: String
    /// Processing attempts made (0 for invalid input).
    public var attempts: Int
    /// Whether it was invalid input rather than a processing failure.
    public var invalidInput: Bool
    /// The `traceparent` of the last attempt (a child span of the record's) when the record
    /// carried a valid one; it replaces the record's own header in the dead letter.
    public var traceparent: String?
    /// The record's `tracestate`, kept with ``traceparent``.
    public var tracestate: String?

    /// Creates a dead letter.
    public init(
        record: CycleRecord, reason: String, attempts: Int, invalidInput: Bool, traceparent: String? = nil, tracestate: String? = nil
    ) {
        self.record = record
        self.reason = reason
        self.attempts = attempts
        self.invalidInput = invalidInput
        self.traceparent = traceparent
        self.tracestate = tracestate
    }
}

/// Stores dead letters durably. A record counts as done only once `deadLetter` returned.
public protocol DeadLetterSink: Sendable {
    /// Stores the dead letter and returns once it is acknowledged.
    /// - Throws: when it was not stored; the record then stays not done and is read again
    ///   (after a backoff that grows while dead letters keep failing). `SinkUnusable` when
    ///   the sink can never store anything again: the orchestrator then stops.
    func deadLetter(_ letter: DeadLetter) async throws
}

/// Thrown by a sink that can never work again, such as one whose producer failed
/// fatally: retrying is pointless, so the cycle fails and nothing of it is committed.
public struct SinkUnusable: Error, Sendable, CustomStringConvertible {
    /// Why, in words for an operator.
    public let reason: String

    /// Creates the error.
    public init(reason: String) { self.reason = reason }

    public var description: String { reason }
}
