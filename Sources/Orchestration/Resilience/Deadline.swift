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

/// Cancels the task that runs a worker's attempts when one of them passes its deadline.
///
/// Attempts run in that task itself, not in a task of their own each (a task per attempt
/// costs its creation, two thread hand-offs and a wake-up per event). A cancellation cannot
/// be undone, so once the watchdog has cancelled it the task takes no further attempt: its
/// worker goes on in a new task (see `CycleDispatcher`).
///
/// Only an attempt still running can be cancelled: a deadline that fires as its attempt
/// ends, or after, changes nothing once ``end()`` has returned.
final class AttemptCanceller: Sendable {
    private struct State {
        /// Cancels the task; nil until attached.
        var cancel: (@Sendable () -> Void)?
        /// Numbers the attempts, so a late deadline of an earlier one is told apart.
        var attempt: UInt64 = 0
        var running = false
        /// Whether the watchdog cancelled the task (for good).
        var expired = false
    }

    private let state = Mutex(State())

    /// How to cancel the task the attempts run in (`task.cancel` of its handle); called at
    /// once if a deadline already passed.
    func attach(_ cancel: @escaping @Sendable () -> Void) {
        let expired = state.withLock { state in
            state.cancel = cancel
            return state.expired
        }
        if expired { cancel() }
    }

    /// Starts an attempt: returns its number, for ``expire(_:)``.
    func begin() -> UInt64 {
        state.withLock { state in
            state.attempt &+= 1
            state.running = true
            return state.attempt
        }
    }

    /// The deadline of attempt `attempt` passed: cancels the task if that attempt still runs.
    func expire(_ attempt: UInt64) {
        let cancel = state.withLock { state -> (@Sendable () -> Void)? in
            guard state.running, state.attempt == attempt else { return nil }
            state.expired = true
            return state.cancel
        }
        cancel?()
    }

    /// Ends the attempt begun last.
    /// - Returns: whether its deadline passed (the task is cancelled then, or is as soon as
    ///   it is attached).
    func end() -> Bool {
        state.withLock { state in
            state.running = false
            return state.expired
        }
    }
}

/// Runs `operation` in the current task, which `canceller` cancels when the watchdog's
/// limit passes first.
/// - Returns: what `operation` returned or threw, and whether the deadline passed (the
///   current task is then cancelled for good, whatever `operation` did).
func withDeadline<T: Sendable>(
    _ watchdog: DeadlineWatchdog, canceller: AttemptCanceller, _ operation: () async throws -> T
) async -> (result: Result<T, any Error>, expired: Bool) {
    let attempt = canceller.begin()
    let registration = watchdog.register { canceller.expire(attempt) }
    let result: Result<T, any Error>
    do {
        result = .success(try await operation())
    } catch {
        result = .failure(error)
    }
    watchdog.remove(registration)
    return (result, canceller.end())
}
