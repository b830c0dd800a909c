import Foundation
import Logging
import Orchestration
@testable import RegenService
import Testing

@Suite("Probes, HTTP settings and JSON logs", .timeLimit(.minutes(1)))
struct MonitoringTests {
    let now = ContinuousClock.now

    @Test("Liveness fails when work waits past the limit or a client failed fatally, and only then")
    func liveness() {
        var status = ConsumerEngine.Status()
        #expect(Probes.liveness(status, fatalErrors: [], stuckAfter: .seconds(10), now: now).isOK, "idle is live")
        status.pendingSince = now - .seconds(9)
        #expect(Probes.liveness(status, fatalErrors: [], stuckAfter: .seconds(10), now: now).isOK, "pending within the limit")
        status.pendingSince = now - .seconds(11)
        #expect(Probes.liveness(status, fatalErrors: [], stuckAfter: .seconds(10), now: now).failures.map(\.check) == ["stuck"])
        status.pendingSince = nil
        let fatal = Probes.liveness(
            status, fatalErrors: [("consumer", "fenced")], stuckAfter: .seconds(10), now: now)
        #expect(fatal.failures.map(\.check) == ["fatal"])
    }

    @Test("Readiness needs an assignment (an empty one counts), commits not failing past the limit, a breaker not open, no stop")
    func readiness() {
        var status = ConsumerEngine.Status()
        let check = { (status: ConsumerEngine.Status, breaker: CircuitBreaker.State) in
            Probes.readiness(status, breaker: breaker, commitsFailingAfter: .seconds(60), now: now).failures.map(\.check)
        }
        #expect(check(status, .closed) == ["assignment"])
        status.joined = true
        #expect(check(status, .closed) == [], "joined with no partitions: a standby is ready")
        #expect(check(status, .halfOpen) == [])
        #expect(check(status, .open) == ["breaker"])
        status.commitsFailingSince = now - .seconds(30)
        #expect(check(status, .closed) == [])
        status.commitsFailingSince = now - .seconds(61)
        #expect(check(status, .closed) == ["commits"])
        status.commitsFailingSince = nil
        status.stopping = true
        #expect(check(status, .closed) == ["stopping"])
    }

    @Test("service.http is validated: an address that is not host:port and too small limits are refused, naming the field")
    func httpSettings() throws {
        var settings = ServiceSettings()
        #expect(settings.problems().isEmpty)
        #expect(settings.http.isLoopback)
        for address in ["[::1]:9464", "localhost:65535", "0.0.0.0:0"] {
            settings.http.address = address
            #expect(settings.problems().isEmpty, "\(address)")
        }
        #expect(!settings.http.isLoopback)
        for address in ["9464", "host:", "host:70000", ":9464", "host:port"] {
            settings.http.address = address
            #expect(settings.problems().map(\.field) == ["service.http.address"], "\(address)")
        }
        settings = ServiceSettings()
        settings.http.stuckAfterMs = 10
        settings.http.commitsFailingAfterMs = 0
        #expect(settings.problems().map(\.field) == ["service.http.stuckAfterMs", "service.http.commitsFailingAfterMs"])
    }

    @Test("A JSON log line is one object: RFC 3339 UTC timestamp with milliseconds, level, label, message, metadata")
    func jsonLine() throws {
        let pipe = Pipe()
        var handler = JSONLogHandler(label: "regen.test", output: pipe.fileHandleForWriting.fileDescriptor)
        handler.metadata = ["instance": "a"]
        var logger = Logger(label: "regen.test") { _ in handler }
        logger.logLevel = .debug
        logger.warning("commit \"failed\"\nretried", metadata: ["offsets": "[1, 2]", "message": "shadowed", "nested": ["k": "v"]])
        try pipe.fileHandleForWriting.close()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "one line: \(output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["message"] as? String == "commit \"failed\"\nretried")
        #expect(object["level"] as? String == "warning")
        #expect(object["label"] as? String == "regen.test")
        #expect(object["instance"] as? String == "a")
        #expect(object["offsets"] as? String == "[1, 2]")
        #expect(object["metadata.message"] as? String == "shadowed")
        #expect((object["nested"] as? [String: String]) == ["k": "v"])
        #expect(JSONLogHandler.timestamp(Date(timeIntervalSince1970: 1_795_828_988.25)) == "2026-11-28T01:23:08.250Z")
    }
}
