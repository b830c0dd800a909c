import Foundation
import Orchestration
import Regeneration

/// Builds the configured processor.
enum ProcessorFactory {
    /// - Throws: when the processor cannot be set up (e.g. its ledger file cannot be opened).
    static func make(_ settings: ProcessorSettings) throws -> any EventProcessor {
        let simulate = settings.simulate
        let work: SimulatedProcessor.Work =
            switch simulate.work {
            case "sleep": .sleep(.milliseconds(simulate.sleepMs))
            case "cpu": .cpu(iterations: simulate.cpuIterations)
            default: .none
            }
        return try SimulatedProcessor(
            work: work, failureRate: simulate.failureRate, failWhileFileExists: simulate.failWhileFileExists,
            ledgerPath: simulate.ledger)
    }
}
