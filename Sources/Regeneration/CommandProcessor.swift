import Foundation
import Orchestration
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

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
/// Runs are started and watched with swift-subprocess: the event is written to standard
/// input and standard error read asynchronously, with no thread of their own per run.
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
        case .exited(0): return ProcessingReport(regenerations: 1)
        case .exited(75): throw ProcessingError.retriable("command exited 75 (EX_TEMPFAIL)\(said)")
        case .exited(let code): throw ProcessingError.permanent("command exited \(code)\(said)")
        case .signaled(let signal): throw ProcessingError.permanent("command killed by signal \(signal)\(said)")
        }
    }

    private func run(input: Data, context: EventContext) async throws -> (status: TerminationStatus, stderr: String) {
        var environment = self.environment
        // The OpenTelemetry convention for passing trace context to a child process.
        if let traceparent = context.traceparent { environment["TRACEPARENT"] = traceparent }
        if let tracestate = context.tracestate { environment["TRACESTATE"] = tracestate }
        environment["REGEN_EVENT_TOPIC"] = context.position.partition.topic
        environment["REGEN_EVENT_PARTITION"] = String(context.position.partition.partition)
        environment["REGEN_EVENT_OFFSET"] = String(context.position.offset)
        environment["REGEN_EVENT_ATTEMPT"] = String(context.attempt)
        var options = PlatformOptions()
        options.processGroupID = 0  // a group of its own, led by the program (pgid = pid)
        // When the run is cancelled (its timeout, a shutdown, a revocation): SIGTERM to the
        // group, SIGKILL to the group after the grace (swift-subprocess ends with it).
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: killGrace)]
        // Every name here is a valid variable name (checked in init, or regen's own).
        let variables = environment.compactMap { name, value in Environment.Key(rawValue: name).map { ($0, value) } }
        let configuration = Configuration(
            executable: .path(FilePath(executable)),
            arguments: Arguments(arguments),
            environment: .custom(Dictionary(uniqueKeysWithValues: variables)),
            platformOptions: options
        )
        let leader = GroupLeader()
        let tail = StderrTail(limit: stderrLimit)
        let bytes = [UInt8](input)
        let outcome = await withTaskGroup(of: RunOutcome?.self) { tasks in
            tasks.addTask {
                do {
                    let result = try await Subprocess.run(configuration, input: .inputWriter, output: .discarded, error: .sequence) { execution in
                        leader.pid = execution.processIdentifier.value
                        await withTaskGroup(of: Void.self) { io in
                            io.addTask {
                                // A program that exits without reading it all makes this fail (EPIPE): its exit status says what happened.
                                _ = try? await execution.standardInputWriter.write(bytes)
                                try? await execution.standardInputWriter.finish()
                            }
                            io.addTask {
                                // Ends when the program has exited (swift-subprocess then ends its streams),
                                // even if a child it left running still holds the pipe open.
                                do {
                                    for try await chunk in execution.standardError { chunk.withUnsafeBytes { tail.append($0) } }
                                } catch {}  // ended by the exit or a cancellation: what was read is kept
                            }
                        }
                    }
                    return .exited(result.terminationStatus)
                } catch {
                    return .failed(error)
                }
            }
            tasks.addTask {
                guard (try? await Task.sleep(for: timeout)) != nil else { return nil }
                return .timedOut
            }
            let first = await tasks.next() ?? nil
            // A timeout cancels the run, which swift-subprocess answers with `teardownSequence`
            // and returns once the program has gone; an exit cancels the timer.
            tasks.cancelAll()
            let second = await tasks.next() ?? nil
            if case .timedOut = first { return RunOutcome.timedOut }
            return first ?? second ?? .timedOut
        }
        // The program is gone; what it started may not be: the whole group goes before a retry may start.
        await Self.reap(group: leader.pid)
        try Task.checkCancellation()
        switch outcome {
        case .timedOut:
            let said = tail.text
            throw ProcessingError.retriable("command timed out after \(timeout)\(said.isEmpty ? "" : "; stderr: \(said)")")
        case .failed(let error):
            throw ProcessingError.retriable("command could not run: \(error)")
        case .exited(let status):
            return (status, tail.text)
        }
    }
}

/// How a run ended.
private enum RunOutcome: Sendable {
    case exited(TerminationStatus)
    case timedOut
    case failed(any Error)
}

extension CommandProcessor {
    /// SIGKILL to what is left of the process group, then waits (at most 5 s) until no
    /// process of it is left.
    fileprivate static func reap(group: pid_t?) async {
        guard let group, group > 0 else { return }
        _ = kill(-group, SIGKILL)
        let end = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < end, kill(-group, 0) == 0 || errno != ESRCH {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// The process id of a run's program, which leads its process group.
private final class GroupLeader: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private var value: pid_t?
    var pid: pid_t? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// The last `limit` bytes of a child's standard error.
private final class StderrTail: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSLock()
    private let limit: Int
    private var bytes: [UInt8] = []
    private var truncated = false

    init(limit: Int) { self.limit = limit }

    func append(_ chunk: UnsafeRawBufferPointer) {
        lock.withLock {
            bytes.append(contentsOf: chunk)
            if bytes.count > limit {
                bytes.removeFirst(bytes.count - limit)
                truncated = true
            }
        }
    }

    /// What was read, as valid UTF-8 (a character cut by the limit becomes U+FFFD), trimmed.
    var text: String {
        let (data, cut) = lock.withLock { (bytes, truncated) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return cut && !text.isEmpty ? "…" + text : text
    }
}
