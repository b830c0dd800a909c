import Foundation
import Orchestration
import Regeneration
import Testing

@Suite("Command processor", .timeLimit(.minutes(3)))
struct CommandProcessorTests {
    /// A new, empty directory of its own.
    static func scratchDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regen-cmd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Writes `text` to `path` and makes it executable.
    static func writeExecutable(_ text: String, at path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
    }

    /// A script that records its stdin and exits as the event's subject asks.
    static func script(in directory: URL) throws -> (path: String, log: String) {
        let log = directory.appendingPathComponent("seen.jsonl").path
        let path = directory.appendingPathComponent("handler.sh").path
        try Self.writeExecutable(
            """
            #!/bin/sh
            input=$(cat)
            printf '%s\\n' "$input" >> '\(log)'
            case "$input" in
              *temporary*) exit 75 ;;
              *permanent*) exit 3 ;;
              *slow*) sleep 300 ;;
              *signalled*) kill -KILL $$ ;;
            esac
            exit 0
            """, at: path)
        return (path, log)
    }

    static func context() -> EventContext {
        EventContext(position: SourcePosition(topic: "t", partition: 0, offset: 0), key: "k", attempt: 1, traceparent: nil, executionID: "x")
    }

    @Test("Exit 0 succeeds with the event as JSON on stdin; 75 is retriable; other codes and signals are permanent; a hang times out")
    func exitCodes() async throws {
        let directory = try Self.scratchDirectory()
        let (path, log) = try Self.script(in: directory)
        // Real-clock timeouts: a run that should finish gets far more than a starved machine
        // needs to start a script (a fresh CI machine, every logic test at once on 2 cores, took
        // over 3 s), and the hang gets a short one, which it reaches however slow the machine is.
        let processor = try CommandProcessor(executable: path, timeout: .seconds(120))
        let impatient = try CommandProcessor(executable: path, timeout: .seconds(1), killGrace: .milliseconds(200))
        let ok = try await processor.process(ChangeEvent(id: "1", changeType: .nodeAdded, subject: "fine"), context: Self.context())
        #expect(ok.regenerations == 1)
        let seen = try String(contentsOfFile: log, encoding: .utf8)
        #expect(seen.contains(#""subject":"fine""#) && seen.contains(#""change_type":"node_added""#))

        for (subject, kind) in [("temporary", ProcessingError.Kind.retriable), ("permanent", .permanent)] {
            let error = await #expect(throws: ProcessingError.self) {
                try await processor.process(ChangeEvent(id: "2", changeType: .nodeAdded, subject: subject), context: Self.context())
            }
            #expect(error?.kind == kind && error?.message.contains("timed out") == false, "\(subject): \(error?.message ?? "")")
        }
        let hung = await #expect(throws: ProcessingError.self) {
            try await impatient.process(ChangeEvent(id: "2", changeType: .nodeAdded, subject: "slow"), context: Self.context())
        }
        #expect(hung?.kind == .retriable && hung?.message.contains("timed out") == true, "\(hung?.message ?? "")")
        // Killed by a signal: permanent, and the reason names the signal rather than an exit status.
        let killed = await #expect(throws: ProcessingError.self) {
            try await processor.process(ChangeEvent(id: "3", changeType: .nodeAdded, subject: "signalled"), context: Self.context())
        }
        #expect(killed?.kind == .permanent && killed?.message == "command killed by signal 9", "\(killed?.message ?? "")")
    }

    @Test("The command's environment is explicit: the base, what is inherited or set, the event's variables; never regen's REGEN_* secrets")
    func explicitEnvironment() async throws {
        let directory = try Self.scratchDirectory()
        let dump = directory.appendingPathComponent("env.txt").path
        let parent = [
            "PATH": "/usr/bin:/bin", "HOME": "/home/regen", "REGEN_KAFKA__SASL_PASSWORD": "hunter2", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
            "SHARED_CA": "/etc/ca.pem",
        ]
        let processor = try CommandProcessor(
            executable: "/bin/sh", arguments: ["-c", "env > '\(dump)'"], inherit: ["SHARED_CA", "NOT_SET_ANYWHERE"],
            environment: ["MODE": "render", "HOME": "/srv"], parent: parent)
        let context = EventContext(
            position: SourcePosition(topic: "changes", partition: 3, offset: 42), key: "k", attempt: 2,
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", executionID: "x", tracestate: "vendor=value")
        _ = try await processor.process(ChangeEvent(id: "1", changeType: .nodeAdded, subject: "s"), context: context)
        var seen: [String: String] = [:]
        for line in try String(contentsOfFile: dump, encoding: .utf8).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            seen[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        #expect(seen["PATH"] == "/usr/bin:/bin")
        #expect(seen["HOME"] == "/srv", "what the settings set wins over the base")
        #expect(seen["SHARED_CA"] == "/etc/ca.pem")
        #expect(seen["MODE"] == "render")
        #expect(seen["REGEN_EVENT_TOPIC"] == "changes" && seen["REGEN_EVENT_PARTITION"] == "3")
        #expect(seen["REGEN_EVENT_OFFSET"] == "42" && seen["REGEN_EVENT_ATTEMPT"] == "2")
        #expect(seen["TRACEPARENT"] == context.traceparent && seen["TRACESTATE"] == "vendor=value")
        #expect(seen["REGEN_KAFKA__SASL_PASSWORD"] == nil && seen["AWS_SECRET_ACCESS_KEY"] == nil && seen["NOT_SET_ANYWHERE"] == nil)
        #expect(!seen.values.contains("hunter2"))

        // regen's own variables cannot be passed, even by name.
        for (inherit, environment) in [(["REGEN_KAFKA__SASL_PASSWORD"], [:]), ([], ["REGEN_EVENT_TOPIC": "x"]), (["A=B"], [:])] {
            #expect(throws: ProcessingError.self) {
                try CommandProcessor(executable: "/bin/sh", inherit: inherit, environment: environment, parent: parent)
            }
        }
    }

    @Test("A command that exits without reading its input fails or succeeds by its exit status; it does not kill regen with SIGPIPE")
    func commandIgnoringInput() async throws {
        // Larger than a pipe's buffer, so the write is still going on when the command has gone.
        let event = ChangeEvent(id: "1", changeType: .nodeAdded, subject: String(repeating: "x", count: 512 * 1024))
        let quitter = try CommandProcessor(executable: "/bin/true")
        #expect(try await quitter.process(event, context: Self.context()).regenerations == 1)
        let failing = try CommandProcessor(executable: "/bin/false")
        await #expect(throws: ProcessingError.self) { try await failing.process(event, context: Self.context()) }
    }

    @Test("A failed run's reason ends with its stderr: the last bytes up to the limit, valid UTF-8, also when it times out")
    func stderrInReason() async throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("noisy.sh").path
        // 10,000 lines of noise, then a cut multi-byte character at the limit's edge, then the cause.
        try Self.writeExecutable(
            """
            #!/bin/sh
            cat > /dev/null
            seq -f 'noise line %g' 0 9999 >&2
            printf 'é€ template "page" references a missing node\\n' >&2
            case "$REGEN_EVENT_OFFSET" in
              1) sleep 300 ;;
              2) echo "fine" >&2; exit 0 ;;
            esac
            exit 3
            """, at: path)
        // As in `exitCodes`: runs that end get a timeout no starved machine reaches; the one that
        // hangs gets one it reaches, long enough for its stderr to have been written and read.
        let processor = try CommandProcessor(executable: path, timeout: .seconds(120), stderrLimit: 60)
        let impatient = try CommandProcessor(executable: path, timeout: .seconds(10), stderrLimit: 60, killGrace: .milliseconds(200))
        func context(_ offset: Int64) -> EventContext {
            EventContext(position: SourcePosition(topic: "t", partition: 0, offset: offset), key: "k", attempt: 1, traceparent: nil, executionID: "x")
        }
        let event = ChangeEvent(id: "1", changeType: .nodeAdded, subject: "s")
        let failed = await #expect(throws: ProcessingError.self) { try await processor.process(event, context: context(0)) }
        let message = failed?.message ?? ""
        #expect(failed?.kind == .permanent && message.hasPrefix("command exited 3; stderr: …"), "\(message)")
        #expect(message.hasSuffix("template \"page\" references a missing node") && !message.contains("noise line 1\n"), "\(message)")
        #expect(message.utf8.count <= "command exited 3; stderr: …".utf8.count + 60 + 3, "\(message.utf8.count) bytes")
        #expect(String(decoding: Array(message.utf8), as: UTF8.self) == message)

        let timedOut = await #expect(throws: ProcessingError.self) { try await impatient.process(event, context: context(1)) }
        #expect(timedOut?.kind == .retriable && timedOut?.message.contains("timed out") == true)
        #expect(timedOut?.message.hasSuffix("references a missing node") == true, "\(timedOut?.message ?? "")")
        // A run that succeeds is not affected by what it wrote to stderr.
        #expect(try await processor.process(event, context: context(2)).regenerations == 1)
        let quiet = try CommandProcessor(executable: path, stderrLimit: 0)
        let bare = await #expect(throws: ProcessingError.self) { try await quiet.process(event, context: context(0)) }
        #expect(bare?.message == "command exited 3")
    }

    @Test("A timed-out or cancelled run is torn down as a group: a program ignoring SIGTERM and the children it started are gone before the failure is reported")
    func teardownKillsTheGroup() async throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let pids = directory.appendingPathComponent("pids").path
        let path = directory.appendingPathComponent("stubborn.sh").path
        // Ignores SIGTERM, starts a child that ignores it too, and both would run for 5 minutes.
        try Self.writeExecutable(
            """
            #!/bin/sh
            trap '' TERM
            cat > /dev/null
            sh -c "trap '' TERM; sleep 300" &
            echo "$$ $!" >> '\(pids)'
            sleep 300
            """, at: path)
        func alive(_ pid: pid_t) -> Bool { kill(pid, 0) == 0 }
        func started(_ line: Int) async throws -> [pid_t] {
            for _ in 0..<500 {
                let lines = ((try? String(contentsOfFile: pids, encoding: .utf8)) ?? "").split(separator: "\n")
                if lines.count > line { return lines[line].split(separator: " ").compactMap { pid_t(String($0)) } }
                try await Task.sleep(for: .milliseconds(10))
            }
            return []
        }
        // Long enough for a starved machine to start the script and its child before the timeout.
        let processor = try CommandProcessor(executable: path, timeout: .seconds(5), killGrace: .milliseconds(200))
        let event = ChangeEvent(id: "1", changeType: .nodeAdded, subject: "s")
        let error = await #expect(throws: ProcessingError.self) { try await processor.process(event, context: Self.context()) }
        #expect(error?.kind == .retriable && error?.message.contains("timed out") == true)
        let first = try await started(0)
        #expect(first.count == 2, "the script did not start its child")
        #expect(first.allSatisfy { !alive($0) }, "still running after the timeout was reported: \(first.filter(alive))")

        // Cancelled (a shutdown or a revocation): the same teardown, then the cancellation.
        let long = try CommandProcessor(executable: path, timeout: .seconds(3600), killGrace: .milliseconds(200))
        let run = Task { try await long.process(event, context: Self.context()) }
        let second = try await started(1)
        #expect(second.count == 2)
        run.cancel()
        await #expect(throws: (any Error).self) { try await run.value }
        #expect(second.allSatisfy { !alive($0) }, "still running after the cancelled run returned: \(second.filter(alive))")
    }

    @Test("Event data is never interpreted by a shell or passed as arguments")
    func noInterpolation() async throws {
        let directory = try Self.scratchDirectory()
        let (path, _) = try Self.script(in: directory)
        let marker = directory.appendingPathComponent("pwned").path
        let processor = try CommandProcessor(executable: path)
        _ = try await processor.process(
            ChangeEvent(id: "$(touch \(marker))", changeType: .nodeAdded, subject: "`touch \(marker)`; touch \(marker)"),
            context: Self.context())
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(throws: ProcessingError.self) { try CommandProcessor(executable: directory.appendingPathComponent("missing").path) }
    }
}

@Suite("Command and simulate processors: hostile input", .timeLimit(.minutes(3)))
struct ProcessorHostileInputTests {
    /// Values that try a shell, an option parser, a path, or sheer size.
    static let hostile = try! HostileInputTests.hostileStrings() + [
        "$(touch PWNED)", "`touch PWNED`", "; touch PWNED", "| touch PWNED", "&& touch PWNED", "'; touch PWNED; '",
        "--help", "-rf /", "--output=/etc/passwd", "-", "--", "../../../../etc/passwd", "/etc/passwd", "~root",
        "*", "?", "[a-z]*", "${HOME}", "%s%n%x", "", String(repeating: "huge ", count: 20_000),
    ]

    @Test("Every hostile value reaches the command exactly as sent, on stdin only: its arguments stay the configured ones, its REGEN_EVENT_* variables the record's position, and no shell runs it")
    func command() async throws {
        let directory = try CommandProcessorTests.scratchDirectory()
        let dump = directory.appendingPathComponent("dump").path
        let path = directory.appendingPathComponent("dump.sh").path
        // Writes its arguments (one per line), its stdin and the event variables, each to a file of its own.
        try CommandProcessorTests.writeExecutable(
            """
            #!/bin/sh
            cd '\(directory.path)'
            for argument in "$@"; do printf '%s\\n' "$argument"; done > '\(dump).args'
            cat > '\(dump).stdin'
            env | grep '^REGEN_EVENT_' | sort > '\(dump).env'
            exit 0
            """, at: path)
        let processor = try CommandProcessor(executable: path, arguments: ["--mode", "render"])
        // (An empty subject never arrives: the decoder refuses it.)
        for (index, value) in Self.hostile.enumerated() where !value.isEmpty {
            let event = ChangeEvent(
                id: "\(index)\(value)", changeType: .nodeUpdated, subject: value, predicate: value, object: value,
                properties: ["title": .string(value), value: .array([.string(value)])], source: value)
            let context = EventContext(
                position: SourcePosition(topic: "changes", partition: 1, offset: Int64(index)), key: value, attempt: 1,
                traceparent: nil, executionID: "x")
            _ = try await processor.process(event, context: context)
            let arguments = try String(contentsOfFile: dump + ".args", encoding: .utf8)
            #expect(arguments == "--mode\nrender\n", "value \(index)")
            let stdin = try Array(Data(contentsOf: URL(fileURLWithPath: dump + ".stdin")))
            let received = try ChangeEvent.decode(stdin)
            #expect(received.id == event.id && received.subject == value && received.predicate == value && received.source == value, "value \(index)")
            #expect(received.properties == event.properties, "value \(index)")
            let variables = try String(contentsOfFile: dump + ".env", encoding: .utf8)
            #expect(variables == "REGEN_EVENT_ATTEMPT=1\nREGEN_EVENT_OFFSET=\(index)\nREGEN_EVENT_PARTITION=1\nREGEN_EVENT_TOPIC=changes\n", "value \(index)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("PWNED").path))
    }

    @Test("Every hostile id takes exactly one line of the simulate processor's ledger, and reads back as sent")
    func ledger() async throws {
        let directory = try CommandProcessorTests.scratchDirectory()
        let path = directory.appendingPathComponent("ledger.txt").path
        let processor = try SimulatedProcessor(ledgerPath: path)
        for (index, value) in Self.hostile.enumerated() {
            _ = try await processor.process(
                ChangeEvent(id: value, changeType: .nodeAdded, subject: "s"),
                context: EventContext(
                    position: SourcePosition(topic: "t", partition: 0, offset: Int64(index)), key: "s", attempt: 1, traceparent: nil,
                    executionID: "x"))
        }
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == Self.hostile.count)
        #expect(lines.map { EventLedger.id(fromLine: String($0)) } == Self.hostile)
    }
}
