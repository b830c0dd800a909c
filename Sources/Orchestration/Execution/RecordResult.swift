/// Why a record was left for redelivery.
enum NotDoneReason: String, Sendable {
    case breakerOpen = "breaker_open"
    case cancelled
    case deadLetterFailed = "dead_letter_failed"
    case blockedByEarlier = "blocked_by_earlier_record_of_key"
}

/// How one record ended.
enum RecordOutcome: Sendable {
    case succeeded(ProcessingReport)
    /// Stored in the dead-letter sink; `invalidInput` when it never reached the processor.
    case deadLettered(invalidInput: Bool)
    case notDone(NotDoneReason, processingFailed: Bool)

    var isDone: Bool {
        switch self {
        case .succeeded, .deadLettered: true
        case .notDone: false
        }
    }
}

/// One record's outcome and what it cost.
struct RecordResult: Sendable {
    let position: SourcePosition
    let outcome: RecordOutcome
    let attempts: Int
    let timeouts: Int
}
