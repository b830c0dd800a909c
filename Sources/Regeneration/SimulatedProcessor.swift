import Foundation
import Orchestration
import Synchronization

/// Simulated work for demos, benchmarks and delivery tests: nothing, a sleep (fixed, or with
/// a jitter drawn per event), or CPU work, failing (retriably) at a configured rate or while a file exists, hanging on the
/// first attempt at every Nth offset, and optionally appending each processed event id
/// to a ledger file before the event counts as done.
public struct SimulatedProcessor: EventProcessor {
    /// What the simulated work is.
    public enum Work: Sendable, Hashable {
        /// Return at once.
        case none
        /// Sleep (cancellably) this long per event.
        case sleep(Duration)
        /// Sleep `base` plus a uniform draw in `0 ... maxJitter` per event, drawn from the
        /// event id and `seed` (see ``SimulatedProcessor/jitter(for:seed:max:)``), so a
        /// benchmark knows every event's duration in advance.
        case jitteredSleep(base: Duration, maxJitter: Duration, seed: UInt64)
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
        hang: (every: Int, duration: Duration)? = nil, ledgerPath: String? = nil, ledgerTimestamps: Bool = false,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) throws {
        self.work = work
        self.failureRate = failureRate
        self.failWhileFileExists = failWhileFileExists
        self.hang = hang
        self.ledger = try ledgerPath.map { try EventLedger(path: $0, timestamps: ledgerTimestamps) }
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
        case .jitteredSleep(let base, let maxJitter, let seed):
            try await Task.sleep(for: base + Self.jitter(for: event.id, seed: seed, max: maxJitter))
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

    /// The jitter of event `id`: uniform in `0 ... max` (in microseconds), the same for the
    /// same id and seed in every process.
    public static func jitter(for id: String, seed: UInt64, max: Duration) -> Duration {
        let maxMicroseconds = UInt64(Swift.max(0, max.components.seconds * 1_000_000 + max.components.attoseconds / 1_000_000_000_000))
        guard maxMicroseconds > 0 else { return .zero }
        // FNV-1a over the seed and the id, then SplitMix64's finalizer to spread the bits.
        var hash = fnv1a(withUnsafeBytes(of: seed.littleEndian, Array.init) + Array(id.utf8))
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return .microseconds(hash % (maxMicroseconds + 1))
    }

    private static func spin(_ iterations: Int, seed: String) {
        var hasher = Hasher()
        for round in 0..<iterations { hasher.combine(round &+ seed.utf8.count) }
        withExtendedLifetime(hasher.finalize()) {}
    }
}

/// An append-only file of processed event ids, one per line (with `timestamps`, each id is
/// followed by a tab and the wall-clock time it was written, in microseconds since 1970).
/// An id's `%`, line feed, carriage return and tab are written as `%25`, `%0A`, `%0D` and
/// `%09`, so every id takes exactly one line whatever it holds (``id(fromLine:)`` reads it back).
/// Each append is one `write(2)` to an `O_APPEND` descriptor, so it survives the process
/// being killed.
public final class EventLedger: Sendable {
    private let descriptor: Int32
    private let timestamps: Bool
    private let lock = Mutex(())

    /// The ledger file cannot be opened.
    public struct OpenError: Error, CustomStringConvertible {
        /// What failed, with the path and the system's reason.
        public let description: String
    }

    /// Opens (creating) the ledger for appending.
    /// - Throws: `OpenError` naming the path and the reason when it cannot be opened.
    public init(path: String, timestamps: Bool = false) throws {
        self.timestamps = timestamps
        descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw OpenError(description: "cannot open the ledger file '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(descriptor) }

    /// Appends one id.
    /// - Throws: `ProcessingError.retriable` when the write fails.
    public func append(_ id: String) throws {
        var time = timespec()
        if timestamps { clock_gettime(CLOCK_REALTIME, &time) }
        let id = Self.escaped(id)
        let line = Array((timestamps ? "\(id)\t\(Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000)\n" : id + "\n").utf8)
        let written = lock.withLock { _ in line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } }
        guard written == line.count else { throw ProcessingError.retriable("ledger write failed (errno \(errno))") }
    }

    private static func escaped(_ id: String) -> String {
        guard id.contains(where: { $0 == "%" || $0 == "\n" || $0 == "\r" || $0 == "\t" || $0 == "\r\n" }) else { return id }
        var result = ""
        for scalar in id.unicodeScalars {
            switch scalar {
            case "%": result += "%25"
            case "\n": result += "%0A"
            case "\r": result += "%0D"
            case "\t": result += "%09"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// The id a ledger line holds (without its timestamp, unescaped).
    public static func id(fromLine line: String) -> String {
        let id = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard id.contains("%") else { return id }
        return id.replacingOccurrences(of: "%0A", with: "\n").replacingOccurrences(of: "%0D", with: "\r")
            .replacingOccurrences(of: "%09", with: "\t").replacingOccurrences(of: "%25", with: "%")
    }
}
