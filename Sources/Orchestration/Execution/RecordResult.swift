/// Why a record was left for redelivery.
enum NotDoneReason: String, Sendable {
    case breakerOpen = "breaker_open"
    case cancelled
    case deadLetterFailed = "dead_letter_failed"
    case blockedByEarlier = "blocked_by_earlier_record_of_key"
    case cycleCompletionFailed = "cycle_completion_failed"
}

/// How one record ended.
enum RecordOutcome: Sendable {
    case succeeded(ProcessingReport)
    /// Stored in the dead-letter sink; `invalidInput` when it never reached the processor.
    case deadLettered(invalidInput: Bool)
    case notDone(NotDoneReason, processingFailed: Bool)

    var isSucceeded: Bool {
        if case .succeeded = self { true } else { false }
    }

    var isDone: Bool {
        switch self {
        case .succeeded, .deadLettered: true
        case .notDone: false
        }
    }
}

/// One record's outcome and what it cost.
struct RecordResult: Sendable {
    /// Where the record is in its cycle.
    let index: Int
    let position: SourcePosition
    var outcome: RecordOutcome
    let attempts: Int
    let timeouts: Int
    /// The record's trace context, when its `traceparent` is valid (parsed once, in dispatch).
    var trace: RecordTrace? = nil
}
