import Foundation
import Orchestration
import Regeneration
import Testing

@Suite("Simulated processor", .timeLimit(.minutes(3)))
struct SimulatedProcessorTests {
    @Test("Jitter: fixed by id and seed, within [0, max], spread evenly, different for another seed")
    func jitter() {
        let ids = (0..<10_000).map { "evt-\($0)" }
        let draws = ids.map { SimulatedProcessor.jitter(for: $0, seed: 42, max: .milliseconds(5)) }
        #expect(draws == ids.map { SimulatedProcessor.jitter(for: $0, seed: 42, max: .milliseconds(5)) })
        #expect(draws.allSatisfy { $0 >= .zero && $0 <= .milliseconds(5) })
        let meanMicroseconds = draws.reduce(0.0) { $0 + Double($1.components.attoseconds) / 1e12 + Double($1.components.seconds) * 1e6 } / 10_000
        #expect(abs(meanMicroseconds - 2500) < 100, "mean \(meanMicroseconds) µs")
        #expect(draws.filter { $0 < .milliseconds(1) }.count > 1500 && draws.filter { $0 > .milliseconds(4) }.count > 1500)
        #expect(draws != ids.map { SimulatedProcessor.jitter(for: $0, seed: 43, max: .milliseconds(5)) })
        #expect(SimulatedProcessor.jitter(for: "x", seed: 1, max: .zero) == .zero)
    }

    @Test("A jittered sleep lasts its base plus the event's draw; the timestamped ledger records when")
    func jitteredSleepAndTimestampedLedger() async throws {
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: ledger) }
        let processor = try SimulatedProcessor(
            work: .jitteredSleep(base: .milliseconds(20), maxJitter: .milliseconds(30), seed: 7), ledgerPath: ledger, ledgerTimestamps: true)
        let event = ChangeEvent(id: "e1", changeType: .nodeUpdated, subject: "s")
        let context = EventContext(position: SourcePosition(topic: "t", partition: 0, offset: 0), key: "s", attempt: 1, traceparent: nil, executionID: "x")
        let before = Date().timeIntervalSince1970 * 1e6
        let start = ContinuousClock.now
        _ = try await processor.process(event, context: context)
        #expect(ContinuousClock.now - start >= .milliseconds(20) + SimulatedProcessor.jitter(for: "e1", seed: 7, max: .milliseconds(30)))
        let fields = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n").first?.split(separator: "\t") ?? []
        #expect(fields.first == "e1")
        let written = Double(fields.last ?? "") ?? 0
        #expect(written >= before && written <= Date().timeIntervalSince1970 * 1e6 + 1000)
    }
}
