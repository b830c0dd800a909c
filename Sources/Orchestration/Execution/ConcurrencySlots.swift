import Synchronization

/// The orchestrator's concurrency limit as slots that every cycle in flight takes from,
/// so `concurrency` bounds the key runs processed at once over all cycles, not per cycle.
/// Waiters are served first come, first served (an older cycle's next run goes before a
/// newer cycle's). The tuner may change the limit at any time; a lower limit takes effect
/// as slots come back.
final class ConcurrencySlots: Sendable {
    private struct State {
        var limit: Int
        var inUse = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextWaiter = 0
    }

    private let state: Mutex<State>

    init(limit: Int) { state = Mutex(State(limit: max(1, limit))) }

    var inUse: Int { state.withLock { $0.inUse } }
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Takes a slot if one is free and nobody waits for one.
    func tryAcquire() -> Bool {
        state.withLock { s in
            guard s.inUse < s.limit, s.waiters.isEmpty else { return false }
            s.inUse += 1
            return true
        }
    }

    /// Takes a slot, waiting for one if none is free.
    /// - Returns: whether a slot was taken (false only when the task was cancelled while
    ///   waiting; it must then not call ``release()``), and whether it had to wait.
    func acquire() async -> (acquired: Bool, waited: Bool) {
        if tryAcquire() { return (true, false) }
        let id = state.withLock { s in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        let acquired = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { s in
                    if Task.isCancelled { return false }
                    if s.inUse < s.limit && s.waiters.isEmpty {
                        s.inUse += 1
                        return true
                    }
                    s.waiters.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { s in
                s.waiters.firstIndex { $0.id == id }.map { s.waiters.remove(at: $0).continuation }
            }
            waiter?.resume(returning: false)
        }
        return (acquired, true)
    }

    /// The current limit.
    var limit: Int { state.withLock { $0.limit } }

    /// Keeps a held slot for the holder's next run, unless the limit fell below the slots
    /// in use or someone waits: then gives it back (as ``release()``) and returns false.
    func keep() -> Bool {
        let (kept, next) = state.withLock { s -> (Bool, CheckedContinuation<Bool, Never>?) in
            if s.inUse <= s.limit && s.waiters.isEmpty { return (true, nil) }
            if s.inUse <= s.limit { return (false, s.waiters.removeFirst().continuation) }
            s.inUse -= 1
            return (false, nil)
        }
        next?.resume(returning: true)
        return kept
    }

    /// Gives a slot back: to the first waiter if the limit allows, otherwise to the pool.
    func release() {
        let next = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if s.inUse <= s.limit, !s.waiters.isEmpty { return s.waiters.removeFirst().continuation }
            s.inUse -= 1
            return nil
        }
        next?.resume(returning: true)
    }

    /// Changes the limit; a higher one hands the new slots to waiters at once.
    func setLimit(_ limit: Int) {
        let woken = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.limit = max(1, limit)
            var woken: [CheckedContinuation<Bool, Never>] = []
            while s.inUse < s.limit, !s.waiters.isEmpty {
                s.inUse += 1
                woken.append(s.waiters.removeFirst().continuation)
            }
            return woken
        }
        for continuation in woken { continuation.resume(returning: true) }
    }
}
