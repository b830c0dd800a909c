import Foundation
import Orchestration
import Regeneration

/// Builds the configured processor.
enum ProcessorFactory {
    /// - Throws: when the processor cannot be set up (bad manifest, ledger not writable, ...).
    /// `concurrency` bounds the template processor's parallel renders (the orchestrator's).
    static func make(_ settings: ProcessorSettings, concurrency: Int) async throws -> any EventProcessor {
        switch settings.type {
        case "template":
            return try await TemplateProcessor(
                templatesDirectory: settings.template.templates, outputDirectory: settings.template.output,
                durability: Durability(rawValue: settings.template.durability) ?? .fsync, renderConcurrency: concurrency)
        case "command":
            return try CommandProcessor(
                executable: settings.command.executable, arguments: settings.command.arguments,
                timeout: .milliseconds(settings.command.timeoutMs), inherit: settings.command.inheritEnvironment,
                environment: settings.command.environment, stderrLimit: settings.command.stderrTailBytes)
        default:
            return try makeSimulated(settings.simulate)
        }
    }

    private static func makeSimulated(_ simulate: SimulateSettings) throws -> any EventProcessor {
        let work: SimulatedProcessor.Work =
            switch simulate.work {
            case "sleep" where simulate.sleepJitterMs > 0:
                .jitteredSleep(
                    base: .milliseconds(simulate.sleepMs), maxJitter: .milliseconds(simulate.sleepJitterMs),
                    seed: UInt64(truncatingIfNeeded: simulate.seed))
            case "sleep": .sleep(.milliseconds(simulate.sleepMs))
            case "cpu": .cpu(iterations: simulate.cpuIterations)
            default: .none
            }
        return try SimulatedProcessor(
            work: work, failureRate: simulate.failureRate, failWhileFileExists: simulate.failWhileFileExists,
            hang: simulate.hangEvery > 0 ? (simulate.hangEvery, .milliseconds(simulate.hangMs)) : nil,
            ledgerPath: simulate.ledger, ledgerTimestamps: simulate.ledgerTimestamps)
    }
}
