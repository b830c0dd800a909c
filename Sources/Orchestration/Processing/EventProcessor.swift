/// What a processor reports for one event.
public struct ProcessingReport: Sendable, Hashable, Codable {
    /// Regenerations this event triggered.
    public var regenerations: Int
    /// Deployments this event completed.
    public var deployments: Int

    /// Creates a report.
    public init(regenerations: Int = 0, deployments: Int = 0) {
        self.regenerations = regenerations
        self.deployments = deployments
    }

    /// Nothing regenerated or deployed.
    public static let none = ProcessingReport()
}

/// Where an event came from and which attempt this is.
public struct EventContext: Sendable, Hashable {
    /// The record's position in its partition.
    public var position: SourcePosition
    /// The ordering key (record key, or the subject when the record has none).
    public var key: String
    /// 1 for the first attempt.
    public var attempt: Int
    /// This attempt's W3C `traceparent`, when the record carried a valid one: the record's
    /// trace id and flags with a span id of the attempt's own (a child of the record's span),
    /// so what the processor starts is traced under this attempt.
    public var traceparent: String?
    /// The record's W3C `tracestate`, passed on with ``traceparent``.
    public var tracestate: String?
    /// The cycle this event belongs to.
    public var executionID: String

    /// Creates a context (the orchestrator makes these; processors' tests may too).
    public init(
        position: SourcePosition, key: String, attempt: Int, traceparent: String?, executionID: String, tracestate: String? = nil
    ) {
        self.position = position
        self.key = key
        self.attempt = attempt
        self.traceparent = traceparent
        self.tracestate = tracestate
        self.executionID = executionID
    }
}

/// Does the work for one change event: the seed's RegenerationEngine role. Events of one
/// key are given in offset order, one at a time; different keys run concurrently.
///
/// Throw a ``ProcessingError`` to say whether a failure is worth retrying; any other
/// error counts as retriable. Honour task cancellation: it is how timeouts and shutdown
/// stop an attempt.
public protocol EventProcessor: Sendable {
    /// Processes one event.
    /// - Throws: ``ProcessingError`` (retriable or permanent), or any error (retriable).
    func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport

    /// Called once per cycle, after every event was dispatched, with the events that
    /// succeeded in cycle order: the place for work that coalesces a cycle (render each
    /// affected artifact once). The default does nothing.
    ///
    /// Blame what a particular event makes fail by naming it in
    /// ``CycleCompletion/rejected``: it goes to the dead-letter sink with that reason and
    /// the rest of the cycle counts as done. Throw only for a failure no event explains
    /// (a missing template, a full disk): the cycle's succeeded events are then *not
    /// done*, are not committed and are read again after a backoff that grows with each
    /// consecutive failure.
    /// - Throws: any error; the cycle's succeeded events are then left for redelivery.
    func completeCycle(_ events: [CompletedEvent], executionID: String) async throws -> CycleCompletion
}

extension EventProcessor {
    public func completeCycle(_ events: [CompletedEvent], executionID: String) async throws -> CycleCompletion { .none }
}

/// What ``EventProcessor/completeCycle(_:executionID:)`` did with a cycle's events.
public struct CycleCompletion: Sendable, Hashable {
    /// Regenerations and deployments the completion performed.
    public var report: ProcessingReport
    /// Events refused for good, by position, with the reason: each is dead-lettered; the
    /// other events of the cycle count as done.
    public var rejected: [SourcePosition: String]

    /// Creates a completion.
    public init(report: ProcessingReport = .none, rejected: [SourcePosition: String] = [:]) {
        self.report = report
        self.rejected = rejected
    }

    /// Nothing done, nothing refused.
    public static let none = CycleCompletion()
}

/// An event that succeeded in this cycle, with where it came from.
public struct CompletedEvent: Sendable, Hashable {
    /// The event.
    public var event: ChangeEvent
    /// Where it came from.
    public var position: SourcePosition

    /// Creates a completed event.
    public init(event: ChangeEvent, position: SourcePosition) {
        self.event = event
        self.position = position
    }
}

/// A processing failure classified for the retry policy.
public struct ProcessingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Whether trying again may help.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// Transient: retried with backoff up to `retry.maxAttempts`.
        case retriable
        /// Will fail again: dead-lettered at once.
        case permanent
    }

    /// The classification.
    public var kind: Kind
    /// What went wrong.
    public var message: String

    /// A failure worth retrying.
    public static func retriable(_ message: String) -> ProcessingError { ProcessingError(kind: .retriable, message: message) }
    /// A failure that will not go away.
    public static func permanent(_ message: String) -> ProcessingError { ProcessingError(kind: .permanent, message: message) }

    public var description: String { "\(kind.rawValue): \(message)" }
}
