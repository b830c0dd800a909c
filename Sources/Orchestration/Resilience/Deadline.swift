import Synchronization

/// The per-attempt deadline passed.
struct AttemptTimedOut: Error {}

/// Cancels attempts that outlive their deadline, with one timer for all of them.
///
/// A timer per attempt (a sleeping child task) costs a task, a Dispatch timer and its
/// wake-up for every event, and a cancelled sleep keeps its timer until the deadline it was
/// set for: at tens of thousands of events per second and a 30 s timeout, a million of them.
/// Here every attempt gets the same limit, so deadlines arrive in the order attempts start:
/// one task sleeps until the earliest deadline still registered, fires what has expired,
/// and ends when nothing is left. Deadlines are on the real monotonic clock (an
/// orchestration clock that tests fast-forward would expire attempts as it sleeps).
final class DeadlineWatchdog: Sendable {
    private struct State {
        var fire: [Int: @Sendable () -> Void] = [:]
        /// Registrations in deadline order; those no longer in `fire` are skipped.
        var order: [(id: Int, deadline: ContinuousClock.Instant)] = []
        var head = 0
        var nextID = 0
        var running = false

        /// Skips the registrations already removed at the head (most attempts end long
        /// before their deadline), and reclaims their room: the watchdog itself wakes only
        /// at deadlines, so registering must keep `order` short.
        mutating func dropRemovedHead() {
            while head < order.count && fire[order[head].id] == nil { head += 1 }
            if head >= 64 && head * 2 >= order.count {
                order.removeSubrange(..<head)
                head = 0
            }
            // An attempt that hangs holds the head: drop the ended ones behind it too.
            if order.count - head > 2 * fire.count + 1024 {
                order = order[head...].filter { fire[$0.id] != nil }
                head = 0
            }
        }
    }

    let limit: Duration
    private let state = Mutex(State())

    init(limit: Duration) {
        self.limit = limit
    }

    /// Calls `fire` once `limit` has passed, unless ``remove(_:)`` comes first.
    func register(_ fire: @escaping @Sendable () -> Void) -> Int {
        let deadline = ContinuousClock.now + limit
        let (id, start) = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.fire[id] = fire
            state.dropRemovedHead()
            state.order.append((id, deadline))
            defer { state.running = true }
            return (id, !state.running)
        }
        if start { Task { await self.watch() } }
        return id
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.fire.removeValue(forKey: id) }
    }

    private func watch() async {
        while true {
            // The earliest deadline still registered; nil (and the loop ends) when none is.
            let next: ContinuousClock.Instant? = state.withLock { state in
                state.dropRemovedHead()
                guard state.head < state.order.count else {
                    state.order.removeAll(keepingCapacity: true)
                    state.head = 0
                    state.running = false
                    return nil
                }
                return state.order[state.head].deadline
            }
            guard let next else { return }
            try? await Task.sleep(until: next)
            let now = ContinuousClock.now
            let expired = state.withLock { state -> [@Sendable () -> Void] in
                var expired: [@Sendable () -> Void] = []
                while state.head < state.order.count && state.order[state.head].deadline <= now {
                    if let fire = state.fire.removeValue(forKey: state.order[state.head].id) { expired.append(fire) }
                    state.head += 1
                }
                return expired
            }
            for fire in expired { fire() }
        }
    }
}

/// Runs `operation`, cancelling it when the watchdog's limit passes.
/// - Throws: `AttemptTimedOut` when the deadline passed first, or what `operation` throws.
func withDeadline<T: Sendable>(
    _ watchdog: DeadlineWatchdog, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let task = Task { try await operation() }
    let timedOut = Flag()
    let id = watchdog.register {
        timedOut.set()
        task.cancel()
    }
    let result = await withTaskCancellationHandler { await task.result } onCancel: { task.cancel() }
    watchdog.remove(id)
    if timedOut.isSet { throw AttemptTimedOut() }
    return try result.get()
}

/// A one-way flag shared across tasks.
private final class Flag: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
