/// The per-attempt deadline passed.
struct AttemptTimedOut: Error {}

/// Runs `operation`, cancelling it when `limit` passes on `clock`.
/// - Throws: `AttemptTimedOut` at the deadline, or what `operation` throws.
func withDeadline<T: Sendable>(
    _ limit: Duration, clock: any OrchestrationClock, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await clock.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw AttemptTimedOut() }
        return value
    }
}
