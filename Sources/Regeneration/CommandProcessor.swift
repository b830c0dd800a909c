import Foundation
import Orchestration

/// Runs a configured program for each event, with the event as JSON on standard input.
/// No shell is involved and event data never becomes an argument. Exit status 0 is
/// success, 75 (`EX_TEMPFAIL`) a retriable failure, anything else a permanent one.
///
/// Each run is in a process group of its own. A run past its timeout (or a cancelled one)
/// is torn down as a group: SIGTERM to every process in it, SIGKILL to whatever is left
/// after ``killGrace``, and the failure is reported only once the group is gone (or 5 s
/// later), so a retry never overlaps the attempt it replaces, and the program's own
/// children do not outlive it.
///
/// The program's environment is explicit, never regen's own (which may hold secrets such
/// as `REGEN_KAFKA__SASL_PASSWORD`): ``baseVariables`` from regen's environment, the
/// variables named in `inherit`, the `environment` given, then `REGEN_EVENT_TOPIC`,
/// `_PARTITION`, `_OFFSET`, `_ATTEMPT` and, when the record has a valid one, `TRACEPARENT` (the
/// attempt's own span under the record's trace) and `TRACESTATE`.
/// Nothing named `REGEN_*` is ever taken from regen's environment or the settings.
///
/// The program's standard error is captured: its last ``stderrLimit`` bytes (valid UTF-8,
/// trimmed) end the failure's reason, so a dead letter's `regen.error` and the log line say
/// why it failed, not only its exit status.
///
/// Creating one makes the process ignore `SIGPIPE`: a command that exits without reading
/// all of its input would otherwise kill regen while the event is written to it.
public struct CommandProcessor: EventProcessor {
    /// The program and its fixed arguments.
    public let executable: String
    /// Arguments passed as they are.
    public let arguments: [String]
    /// How long one run may take.
    public let timeout: Duration
    /// The environment every run starts from (before the event's variables).
    public let environment: [String: String]
    /// How much of the end of a failed run's standard error its reason keeps, in bytes.
    public let stderrLimit: Int
    /// How long a run being torn down has after SIGTERM before SIGKILL.
    public let killGrace: Duration

    /// What every command gets from regen's environment, when set there.
    public static let baseVariables = ["PATH", "HOME", "LANG", "TZ"]

    /// Whether `name` may be passed to a command by `inherit` or `environment`: a
    /// variable name (letters, digits, `_`, not starting with a digit) not starting with `REGEN_`.
    public static func isPassable(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return !name.hasPrefix("REGEN_")
            && name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }

    /// Creates a command processor.
    /// - Parameters:
    ///   - inherit: names of regen's environment variables the command gets too.
    ///   - environment: variables set for the command.
    ///   - parent: regen's environment (the process's by default).
    /// - Throws: `ProcessingError.permanent` when `executable` is not an executable file,
    ///   or a name in `inherit` or `environment` is not passable (``isPassable(_:)``).
    public init(
        executable: String, arguments: [String] = [], timeout: Duration = .seconds(30), inherit: [String] = [],
        environment: [String: String] = [:], stderrLimit: Int = 4096, killGrace: Duration = .seconds(5),
        parent: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ProcessingError.permanent("command '\(executable)' is not an executable file")
        }
        if let bad = (inherit + environment.keys).first(where: { !Self.isPassable($0) }) {
            throw ProcessingError.permanent("'\(bad)' cannot be passed to a command: a variable name not starting with REGEN_ is expected")
        }
        // A write to a command that has gone then fails with EPIPE instead of killing regen.
        signal(SIGPIPE, SIG_IGN)
        self.executable = executable
        self.arguments = arguments
        self.timeout = timeout
        self.stderrLimit = max(0, stderrLimit)
        self.killGrace = killGrace
        var base: [String: String] = [:]
        for name in Self.baseVariables + inherit { base[name] = parent[name] }
        self.environment = base.merging(environment) { _, given in given }
    }

    public func process(_ event: ChangeEvent, context: EventContext) async throws -> ProcessingReport {
        let input = try JSONEncoder().encode(event)
        let (status, stderr) = try await run(input: input, context: context)
        let said = stderr.isEmpty ? "" : "; stderr: \(stderr)"
        switch status {
        case 0: return ProcessingReport(regenerations: 1)
        case 75: throw ProcessingError.retriable("command exited 75 (EX_TEMPFAIL)\(said)")
        default: throw ProcessingError.permanent("command exited \(status)\(said)")
        }
    }

    private func run(input: Data, context: EventContext) async throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = self.environment
        // The OpenTelemetry convention for passing trace context to a child process.
        if let traceparent = context.traceparent { environment["TRACEPARENT"] = traceparent }
        if let tracestate = context.tracestate { environment["TRACESTATE"] = tracestate }
        environment["REGEN_EVENT_TOPIC"] = context.position.partition.topic
        environment["REGEN_EVENT_PARTITION"] = String(context.position.partition.partition)
        environment["REGEN_EVENT_OFFSET"] = String(context.position.offset)
        environment["REGEN_EVENT_ATTEMPT"] = String(context.attempt)
        process.environment = environment
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        let stderr = Pipe()
        process.standardError = stderr
        let exited = ExitSignal()
        process.terminationHandler = { _ in exited.fire() }
        try process.run()  // Foundation starts the child in a process group of its own (pgid = pid)
        let group = process.processIdentifier
        let tail = StderrTail(stderr.fileHandleForReading, limit: stderrLimit)
        // Written from a helper thread: a child that does not read stdin must not block us.
        Thread.detachNewThread {
            try? stdin.fileHandleForWriting.write(contentsOf: input)
            try? stdin.fileHandleForWriting.close()
        }
        let finished = await withTaskCancellationHandler {
            await exited.wait(atMost: timeout)
        } onCancel: {
            _ = kill(-group, SIGTERM)
        }
        if !finished || Task.isCancelled {
            // Not cancellable itself: a cancelled caller still waits for the group to be gone.
            await Task.detached { [killGrace] in await Self.tearDown(group: group, exited: exited, grace: killGrace) }.value
            try Task.checkCancellation()
            let said = await tail.text(waitingAtMost: .milliseconds(500))
            throw ProcessingError.retriable("command timed out after \(timeout)\(said.isEmpty ? "" : "; stderr: \(said)")")
        }
        // A child the command left running may hold stderr open: its end is not awaited for long.
        return (process.terminationStatus, await tail.text(waitingAtMost: .seconds(1)))
    }
}

extension CommandProcessor {
    /// SIGTERM to the process group, SIGKILL to what is left of it after `grace`, then
    /// waits (at most 5 s) until no process of the group is left.
    fileprivate static func tearDown(group: pid_t, exited: ExitSignal, grace: Duration) async {
        _ = kill(-group, SIGTERM)
        await exited.wait(atMost: grace)
        // The program may be gone while its own children ignore SIGTERM: the group gets SIGKILL either way.
        _ = kill(-group, SIGKILL)
        let end = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < end, kill(-group, 0) == 0 || errno != ESRCH {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Reads a child's standard error on a thread of its own until its end, keeping the last
/// `limit` bytes.
private final class StderrTail: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var bytes = Data()
    private var truncated = false
    private let ended = ExitSignal()

    init(_ handle: FileHandle, limit: Int) {
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.withLock {
                    bytes.append(chunk)
                    if bytes.count > limit {
                        bytes = Data(bytes.suffix(limit))
                        truncated = true
                    }
                }
            }
            try? handle.close()
            ended.fire()
        }
    }

    /// What was read, as valid UTF-8 (a character cut by the limit becomes U+FFFD), trimmed,
    /// once the stream ended or `limit` passed.
    func text(waitingAtMost limit: Duration) async -> String {
        await ended.wait(atMost: limit)
        let (data, cut) = lock.withLock { (bytes, truncated) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return cut && !text.isEmpty ? "…" + text : text
    }
}

/// Signals a process exit to an async waiter.
private final class ExitSignal: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var done = false
    private var waiter: CheckedContinuation<Void, Never>?

    func fire() {
        let waiting = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            done = true
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume()
    }

    private func releaseWaiter() {
        let waiting = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume()
    }

    /// Whether the process exited within `limit`.
    @discardableResult
    func wait(atMost limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let already = self.lock.withLock { () -> Bool in
                        if self.done { return true }
                        self.waiter = continuation
                        return false
                    }
                    if already { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            if !first { self.releaseWaiter() }  // the child waiting for the exit must end too
            group.cancelAll()
            return first
        }
    }
}
