import Foundation
import Orchestration
import Synchronization

/// Simulated work for demos, benchmarks and delivery tests: nothing, a sleep, or CPU
/// work, failing (retriably) at a configured rate or while a file exists, hanging on the
/// first attempt at every Nth offset, and optionally appending each processed event id
/// to a ledger file before the event counts as done.
public struct SimulatedProcessor: EventProcessor {
    /// What the simulated work is.
    public enum Work: Sendable, Hashable {
        /// Return at once.
        case none
        /// Sleep (cancellably) this long per event.
        case sleep(Duration)
        /// Spin through this many hashing rounds per event.
        case cpu(iterations: Int)
    }

    private let work: Work
    private let failureRate: Double
    private let failWhileFileExists: String?
    private let hang: (every: Int, duration: Duration)?
    private let ledger: EventLedger?
    private let random: @Sendable () -> Double

    /// Creates a simulated processor.
    /// - Throws: when the ledger file cannot be opened for appending.
    public init(
        work: Work = .none, failureRate: Double = 0, failWhileFileExists: String? = nil,
        hang: (every: Int, duration: Duration)? = nil, ledgerPath: String? = nil,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) throws {
        self.work = work
        self.failureRate = failureRate
        self.failWhileFileExists = failWhileFileExists
        self.hang = hang
        self.ledger = try ledgerPath.map(EventLedger.init(path:))
        self.random = random
    }

    public func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport {
        // A slow downstream: every Nth offset hangs on its first attempt (until cancelled by the timeout).
        if let hang, hang.every > 0, context.attempt == 1, context.position.offset % Int64(hang.every) == 0 {
            try await Task.sleep(for: hang.duration)
        }
        switch work {
        case .none: break
        case .sleep(let duration): try await Task.sleep(for: duration)
        case .cpu(let iterations): Self.spin(iterations, seed: event.id)
        }
        if let path = failWhileFileExists, FileManager.default.fileExists(atPath: path) {
            throw ProcessingError.retriable("simulated outage: \(path) exists")
        }
        if failureRate > 0 && random() < failureRate {
            throw ProcessingError.retriable("simulated failure (rate \(failureRate))")
        }
        try ledger?.append(event.id)
        return ProcessingReport(regenerations: 1)
    }

    private static func spin(_ iterations: Int, seed: String) {
        var hasher = Hasher()
        for round in 0..<iterations { hasher.combine(round &+ seed.utf8.count) }
        withExtendedLifetime(hasher.finalize()) {}
    }
}

/// An append-only file of processed event ids, one per line. Each append is one
/// `write(2)` to an `O_APPEND` descriptor, so it survives the process being killed.
public final class EventLedger: Sendable {
    private let descriptor: Int32
    private let lock = Mutex(())

    /// The ledger file cannot be opened.
    public struct OpenError: Error, CustomStringConvertible {
        /// What failed, with the path and the system's reason.
        public let description: String
    }

    /// Opens (creating) the ledger for appending.
    /// - Throws: `OpenError` naming the path and the reason when it cannot be opened.
    public init(path: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw OpenError(description: "cannot open the ledger file '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(descriptor) }

    /// Appends one id.
    /// - Throws: `ProcessingError.retriable` when the write fails.
    public func append(_ id: String) throws {
        let line = Array((id + "\n").utf8)
        let written = lock.withLock { _ in line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } }
        guard written == line.count else { throw ProcessingError.retriable("ledger write failed (errno \(errno))") }
    }
}
