/// How big each scenario is: `full` for `make bench` (about 10 minutes on 2 cores),
/// `tiny` for the harness's own test in `make test`.
struct Scale: Codable {
    var drainEvents: Int
    var drainPartitions: Int
    var drainLimitSeconds: Double
    var kcatRuns: Int
    var parallelEvents: Int
    var parallelKeys: Int
    var overheadNoopEvents: Int
    var overheadCPUEvents: Int
    var decodeSeconds: Double
    var decodeEvents: Int
    var scalingLevels: [Int]
    var scalingEventsPerLevel: Int
    var scalingMaxEvents: Int
    var latencyRate: Int
    var latencySeconds: Double
    var latencyPartitions: Int
    var templateEvents: Int
    var templateSubjects: Int
    var templateLimitSeconds: Double
    /// Subjects in the render scenario's stores (smallest to largest), and its measured cycles.
    var renderSubjects: [Int]
    var renderCycles: Int

    static let full = Scale(
        drainEvents: 1_000_000, drainPartitions: 128, drainLimitSeconds: 240, kcatRuns: 3, parallelEvents: 10_000, parallelKeys: 1_000,
        overheadNoopEvents: 100_000, overheadCPUEvents: 10_000, decodeSeconds: 1.5, decodeEvents: 10_000,
        scalingLevels: [1, 2, 4, 8, 16, 32, 64, 128, 256], scalingEventsPerLevel: 400, scalingMaxEvents: 10_000,
        latencyRate: 20_000, latencySeconds: 30, latencyPartitions: 64, templateEvents: 100_000, templateSubjects: 1_000,
        templateLimitSeconds: 120, renderSubjects: [1_000, 5_000, 20_000, 50_000], renderCycles: 20)

    static let tiny = Scale(
        drainEvents: 2_000, drainPartitions: 8, drainLimitSeconds: 60, kcatRuns: 1, parallelEvents: 300, parallelKeys: 50,
        overheadNoopEvents: 2_000, overheadCPUEvents: 200, decodeSeconds: 0.05, decodeEvents: 200,
        scalingLevels: [1, 2, 4], scalingEventsPerLevel: 40, scalingMaxEvents: 200,
        latencyRate: 500, latencySeconds: 2, latencyPartitions: 8, templateEvents: 300, templateSubjects: 30, templateLimitSeconds: 60,
        renderSubjects: [50, 200], renderCycles: 2)
}
