import Foundation
import Orchestration

/// What a liveness or readiness probe found: nothing (the service is live or ready) or
/// the checks that failed, each with a sentence saying why.
public struct ProbeResult: Sendable, Hashable, Codable {
    /// One failed check.
    public struct Failure: Sendable, Hashable, Codable {
        /// Which check: `stuck`, `fatal`, `assignment`, `commits`, `breaker`, `stopping`.
        public var check: String
        /// What was found, for a person.
        public var detail: String
    }

    /// The failed checks; empty when the probe passes.
    public var failures: [Failure] = []

    /// Whether the probe passes.
    public var isOK: Bool { failures.isEmpty }

    mutating func fail(_ check: String, _ detail: String) { failures.append(Failure(check: check, detail: detail)) }
}

/// The probes' rules, apart from where their inputs come from.
enum Probes {
    /// Live unless work has waited longer than `stuckAfter` without a cycle finishing, or
    /// a Kafka client failed fatally (only a restart mends either).
    static func liveness(
        _ status: ConsumerEngine.Status, fatalErrors: [(client: String, error: String)], stuckAfter: Duration,
        now: ContinuousClock.Instant
    ) -> ProbeResult {
        var result = ProbeResult()
        for (client, error) in fatalErrors { result.fail("fatal", "the \(client) failed fatally: \(error)") }
        if let since = status.pendingSince, now - since > stuckAfter {
            result.fail(
                "stuck",
                "no cycle finished for \(Int((now - since).seconds)) s while work was pending "
                    + "(\(status.cyclesInFlight) cycles in flight, \(status.bufferedRecords) records waiting); "
                    + "the limit is service.http.stuckAfterMs")
        }
        return result
    }

    /// Ready once the group has given this member its assignment (an empty one counts: a
    /// member of a group with more members than partitions is a standby, and restarting it
    /// helps nothing), while commits have not failed for longer than `commitsFailingAfter`,
    /// the circuit breaker is not open, and the service is not stopping.
    static func readiness(
        _ status: ConsumerEngine.Status, breaker: CircuitBreaker.State, commitsFailingAfter: Duration,
        now: ContinuousClock.Instant
    ) -> ProbeResult {
        var result = ProbeResult()
        if status.stopping { result.fail("stopping", "the service is shutting down") }
        if !status.joined { result.fail("assignment", "waiting for the consumer group to assign partitions") }
        if let since = status.commitsFailingSince, now - since > commitsFailingAfter {
            result.fail(
                "commits",
                "offset commits have failed for \(Int((now - since).seconds)) s; the limit is service.http.commitsFailingAfterMs")
        }
        if breaker == .open { result.fail("breaker", "the circuit breaker is open: the processor keeps failing") }
        return result
    }
}
