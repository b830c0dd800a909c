import Synchronization

/// A circuit breaker over processor attempts. Closed: everything passes, outcomes go
/// into a rolling window. Open: nothing passes until the cooldown ends. Half-open: one
/// probe passes; its success closes the breaker, its failure reopens it with a doubled
/// cooldown.
public final class CircuitBreaker: Sendable {
    /// The breaker's state, as reported in telemetry.
    public enum State: String, Sendable, Hashable, Codable {
        case closed, open
        case halfOpen = "half_open"
    }

    /// What a caller may do.
    public enum Permit: Sendable, Hashable {
        /// Go ahead.
        case allowed
        /// Go ahead as the half-open probe; report the outcome.
        case probe
        /// Do not dispatch.
        case rejected
    }

    /// A state change, for telemetry.
    public struct Transition: Sendable, Hashable {
        /// From this state.
        public var from: State
        /// To this state.
        public var to: State
        /// Failure ratio in the window when it happened.
        public var failureRatio: Double
        /// Cooldown now in force (when opening).
        public var cooldown: Duration
    }

    private struct Storage {
        var state: State = .closed
        var window: [Bool] = []  // true = failure; ring buffer
        var next = 0
        var failures = 0
        var openedAt: Duration = .zero
        var cooldown: Duration
        var probeInFlight = false
        var transitions: [Transition] = []
    }

    private let policy: BreakerPolicy
    private let clock: any OrchestrationClock
    private let storage: Mutex<Storage>

    /// Creates a closed breaker.
    public init(policy: BreakerPolicy, clock: any OrchestrationClock) {
        self.policy = policy
        self.clock = clock
        storage = Mutex(Storage(cooldown: .milliseconds(policy.cooldownMs)))
    }

    /// The current state (open turns half-open once its cooldown has passed).
    public var state: State {
        storage.withLock { s in
            s.state == .open && clock.now - s.openedAt >= s.cooldown ? .halfOpen : s.state
        }
    }

    /// Asks to dispatch one attempt.
    public func acquire() -> Permit {
        guard policy.enabled else { return .allowed }
        return storage.withLock { s in
            switch s.state {
            case .closed:
                return .allowed
            case .open:
                guard clock.now - s.openedAt >= s.cooldown else { return .rejected }
                transition(&s, to: .halfOpen)
                s.probeInFlight = true
                return .probe
            case .halfOpen:
                guard !s.probeInFlight else { return .rejected }
                s.probeInFlight = true
                return .probe
            }
        }
    }

    /// Reports the outcome of an attempt dispatched with `permit`.
    public func record(success: Bool, permit: Permit) {
        guard policy.enabled, permit != .rejected else { return }
        storage.withLock { s in
            if permit == .probe || s.state == .halfOpen {
                recordProbe(&s, success: success)
            } else if s.state == .closed {
                recordClosed(&s, success: success)
            }
        }
    }

    /// Gives back a permit whose attempt ended without an outcome (cancelled), so a
    /// half-open breaker can probe again.
    public func abandon(_ permit: Permit) {
        guard permit == .probe else { return }
        storage.withLock { $0.probeInFlight = false }
    }

    /// Takes the transitions since the last call.
    public func drainTransitions() -> [Transition] {
        storage.withLock { s in
            defer { s.transitions.removeAll() }
            return s.transitions
        }
    }

    private func recordClosed(_ s: inout Storage, success: Bool) {
        if s.window.count < policy.windowSize {
            s.window.append(!success)
        } else {
            if s.window[s.next] { s.failures -= 1 }
            s.window[s.next] = !success
            s.next = (s.next + 1) % policy.windowSize
        }
        if !success { s.failures += 1 }
        let ratio = Double(s.failures) / Double(s.window.count)
        if s.window.count >= policy.minimumCalls && ratio >= policy.failureRatio {
            s.openedAt = clock.now
            transition(&s, to: .open)
        }
    }

    private func recordProbe(_ s: inout Storage, success: Bool) {
        s.probeInFlight = false
        if success {
            s.window.removeAll(keepingCapacity: true)
            s.next = 0
            s.failures = 0
            s.cooldown = .milliseconds(policy.cooldownMs)
            transition(&s, to: .closed)
        } else {
            s.cooldown = min(s.cooldown * 2, .milliseconds(policy.maxCooldownMs))
            s.openedAt = clock.now
            transition(&s, to: .open)
        }
    }

    private func transition(_ s: inout Storage, to state: State) {
        let ratio = s.window.isEmpty ? 0 : Double(s.failures) / Double(s.window.count)
        s.transitions.append(Transition(from: s.state, to: state, failureRatio: ratio, cooldown: s.cooldown))
        s.state = state
    }
}
