/// A lifecycle error of the orchestrator.
public struct OrchestrationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong; new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable { case alreadyRunning, notRunning, deadLetterSinkUnusable }
        private let kind: Kind
        /// `start()` was called while running.
        public static let alreadyRunning = Code(kind: .alreadyRunning)
        /// A cycle was offered while not running.
        public static let notRunning = Code(kind: .notRunning)
        /// The dead-letter sink can never store anything again (`SinkUnusable`).
        public static let deadLetterSinkUnusable = Code(kind: .deadLetterSinkUnusable)
        public var description: String { String(describing: kind) }
    }

    /// The kind of error.
    public let code: Code
    /// What happened, when the code alone does not say.
    public var reason: String? = nil
    /// Where it was raised.
    public let file: String
    /// The line where it was raised.
    public let line: Int

    /// `start()` while already running.
    public static func alreadyRunning(file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .alreadyRunning, file: file, line: line)
    }

    /// A cycle while not running.
    public static func notRunning(file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .notRunning, file: file, line: line)
    }

    /// The dead-letter sink failed for good; the cycle's results are not returned, so
    /// nothing of it is committed.
    public static func deadLetterSinkUnusable(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .deadLetterSinkUnusable, reason: reason, file: file, line: line)
    }

    public var description: String {
        "OrchestrationError.\(code)\(reason.map { ": \($0)" } ?? "") (\(file):\(line))"
    }
}
