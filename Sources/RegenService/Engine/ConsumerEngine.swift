import CoreMetrics
import Foundation
import Logging
import Orchestration
import RdKafka
import Synchronization

/// Runs ``EngineMachine`` against librdkafka: one loop applies every event to the machine
/// in the order it arrived and performs the actions it returns. Events come from the
/// poller (records), the rebalance handler (assignments, revocations, losses), the cycles
/// (results), the control task (commit and seek answers), a timer, and stop requests.
///
/// Blocking librdkafka calls stay on the consumer's own threads; the control task performs
/// commits, seeks, pauses and resumes strictly in the order the machine asked for them.
final class ConsumerEngine: Sendable {
    typealias Machine = EngineMachine<CycleRecord>

    /// What the engine is doing, for the progress line, the summary, the probes and the
    /// metrics; updated after every event the loop applies.
    struct Status: Sendable {
        var commits = 0
        var failedCommits = 0
        /// When the commits now failing in a row started failing; nil after a success.
        var commitsFailingSince: ContinuousClock.Instant?
        /// Whether the group has given this member an assignment yet (possibly empty).
        var joined = false
        var ownedPartitions = 0
        var bufferedRecords = 0
        var bufferedBytes = 0
        var cyclesInFlight = 0
        /// Since when work has been waiting here (a cycle in flight or records buffered)
        /// without a cycle finishing; nil while there is none.
        var pendingSince: ContinuousClock.Instant?
        var stopping = false
    }

    /// The engine's own metrics (see the README's list).
    private struct Metrics: Sendable {
        let commitsSucceeded: Counter
        let commitsFailed: Counter
        let assigned: Counter
        let revoked: Counter
        let lost: Counter
        let givenUpUncommitted: Counter

        init(factory: any MetricsFactory) {
            func commits(_ result: String) -> Counter {
                Counter(label: "regen_commits_total", dimensions: [("result", result)], factory: factory)
            }
            func rebalances(_ kind: String) -> Counter {
                Counter(label: "regen_rebalances_total", dimensions: [("kind", kind)], factory: factory)
            }
            commitsSucceeded = commits("succeeded")
            commitsFailed = commits("failed")
            assigned = rebalances("assigned")
            revoked = rebalances("revoked")
            lost = rebalances("lost")
            givenUpUncommitted = Counter(label: "regen_given_up_uncommitted_records_total", factory: factory)
        }
    }

    private enum Control: Sendable {
        case commit(Machine.CommitID, [TopicPartitionOffset])
        case seek(TopicPartitionOffset, generation: UInt64)
        case pause([TopicPartition])
        case resume([TopicPartition])
    }

    private let consumer: KafkaConsumer
    private let orchestrator: RegenerationOrchestrator
    private let settings: EngineSettings
    private let logger: Logger
    private let events: AsyncStream<Machine.Event>
    private let post: AsyncStream<Machine.Event>.Continuation
    private let controls: AsyncStream<Control>
    private let control: AsyncStream<Control>.Continuation
    /// What the machine last said the poller should do, and how many records the poller
    /// has posted that the loop has not applied yet (they count against the room).
    private let mode: Mutex<(mode: Machine.PollMode, inTransit: Int)>
    /// Rung when the loop has applied records or stops, for the poller waiting for room.
    private let room = Doorbell()
    /// Numbers the polls; a seek's answer says which polls started after it.
    private let polls = Atomic(0)
    private let revocationIDs = Atomic(0)
    /// Revocation handlers waiting for their release; nil once the engine has finished.
    private let releases = Mutex<[Machine.RevocationID: CheckedContinuation<Void, Never>]?>([:])
    private let status = Mutex(Status())
    private let metrics: Metrics

    init(
        consumer: KafkaConsumer, orchestrator: RegenerationOrchestrator, settings: EngineSettings, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory
    ) {
        self.metrics = Metrics(factory: metrics)
        self.consumer = consumer
        self.orchestrator = orchestrator
        self.settings = settings
        self.logger = logger
        (events, post) = AsyncStream.makeStream(of: Machine.Event.self)
        (controls, control) = AsyncStream.makeStream(of: Control.self)
        mode = Mutex((.fetch(settings.bufferRecords), 0))
    }

    var snapshot: Status { status.withLock { $0 } }

    /// Asks the engine to finish its cycles in flight (at most the shutdown timeout),
    /// commit what they did and return. Callable from anywhere.
    func requestStop() {
        post.yield(.stopRequested)
        consumer.wakeUp()
    }

    /// The consumer's rebalance handler. A revocation returns once the engine releases its
    /// partitions (the consumer bounds the wait too).
    func handle(_ event: KafkaRebalanceEvent) async {
        switch event {
        case .assigned(let partitions):
            metrics.assigned.increment()
            post.yield(.assigned(Set(partitions)))
        case .lost(let partitions):
            metrics.lost.increment()
            post.yield(.lost(Set(partitions)))
        case .revoked(let partitions):
            metrics.revoked.increment()
            let id = revocationIDs.add(1, ordering: .relaxed).newValue
            await withCheckedContinuation { continuation in
                let waiting = releases.withLock { releases in
                    releases?[id] = continuation
                    return releases != nil
                }
                if waiting { post.yield(.revoked(Set(partitions), id)) } else { continuation.resume() }
            }
        }
    }

    /// Runs until stopped, or until the consumer or a cycle fails.
    /// - Throws: the failure that stopped the engine (`KafkaError`, `OrchestrationError`).
    func run() async throws {
        let poller = Task { await pollLoop() }
        let controller = Task { await controlLoop() }
        var machine = Machine(settings: settings)
        var cycleTasks: [Machine.CycleID: Task<Void, Never>] = [:]
        var timer: (deadline: ContinuousClock.Instant, task: Task<Void, Never>)?
        var failure: (any Error)?
        loop: for await event in events {
            switch event {
            case .cycleFinished(let id, _), .cycleFailed(let id, _): cycleTasks[id] = nil
            default: break
            }
            let givenUpBefore = machine.givenUpUncommitted
            let actions = machine.handle(event, at: .now)
            if machine.givenUpUncommitted > givenUpBefore {
                metrics.givenUpUncommitted.increment(by: machine.givenUpUncommitted - givenUpBefore)
            }
            for action in actions {
                switch action {
                case .startCycle(let id, let messages): cycleTasks[id] = startCycle(id, messages)
                case .commit(let id, let offsets): control.yield(.commit(id, offsets))
                case .seek(let position, let generation): control.yield(.seek(position, generation: generation))
                case .pause(let partitions): control.yield(.pause(partitions))
                case .resume(let partitions): control.yield(.resume(partitions))
                case .release(let id): releases.withLock { $0?.removeValue(forKey: id) }?.resume()
                case .cancelCycles:
                    logger.warning("shutdown timeout: cancelling the cycles in flight", metadata: ["cycles": "\(cycleTasks.count)"])
                    for task in cycleTasks.values { task.cancel() }
                case .finish(let why):
                    failure = why
                    break loop
                }
            }
            updateStatus(after: event, machine: machine)
            let newMode = machine.pollMode
            let applied = if case .fetched(let records, _) = event { records.count } else { 0 }
            mode.withLock { state in
                state.mode = newMode
                state.inTransit -= applied
            }
            if case .fetch = newMode { room.ring() }
            if let deadline = machine.nextDeadline, deadline != timer?.deadline {
                timer?.task.cancel()
                timer = (deadline, Task { [post] in
                    guard (try? await Task.sleep(until: deadline)) != nil else { return }
                    post.yield(.tick)
                })
            }
        }
        timer?.task.cancel()
        mode.withLock { $0.mode = .stop }
        room.ring()
        releases.withLock { releases in
            for continuation in (releases ?? [:]).values { continuation.resume() }
            releases = nil
        }
        consumer.wakeUp()
        await poller.value
        control.finish()
        await controller.value
        if machine.droppedOutOfOrder > 0 {
            logger.info("records dropped that did not continue their partition", metadata: ["count": "\(machine.droppedOutOfOrder)"])
        }
        logger.info("cycle loop stopped")
        if let failure { throw failure }
    }

    private func updateStatus(after event: Machine.Event, machine: Machine) {
        let now = ContinuousClock.now
        status.withLock { s in
            let pending = !machine.cycles.isEmpty || machine.bufferedRecords > 0
            switch event {
            case .assigned: s.joined = true
            case .stopRequested: s.stopping = true
            default: break
            }
            if !pending {
                s.pendingSince = nil
            } else if s.pendingSince == nil || event.isCycleFinished {
                s.pendingSince = now
            }
            s.ownedPartitions = machine.partitions.count
            s.bufferedRecords = machine.bufferedRecords
            s.bufferedBytes = machine.bufferedBytes
            s.cyclesInFlight = machine.cycles.count
        }
    }

    private func startCycle(_ id: Machine.CycleID, _ records: [CycleRecord]) -> Task<Void, Never> {
        Task { [orchestrator, post, logger] in
            do {
                let result = try await orchestrator.executeCycle(Cycle(records: records))
                var done: [TopicPartition: [Int64]] = [:]
                for progress in result.partitions { done[TopicPartition(progress.partition)] = progress.doneOffsets }
                post.yield(.cycleFinished(id, done: done))
            } catch is CancellationError {
                post.yield(.cycleFinished(id, done: [:]))
            } catch {
                logger.error("cycle failed; stopping", metadata: ["error": "\(error)"])
                post.yield(.cycleFailed(id, error))
            }
        }
    }

    /// Fetches while the machine has room; otherwise polls only to serve rebalances. Runs
    /// on the consumer's poll thread, where the records are decoded too: the next batch is
    /// fetched and decoded while the cycles run on the cooperative pool, and a batch never
    /// waits there for a thread.
    private func pollLoop() async {
        let maxBytes = orchestrator.config.maxEventBytes
        do {
            try await consumer.pump(timeout: .milliseconds(100)) { [self] in
                nextPollLimit()
            } deliver: { [self] messages in
                mode.withLock { $0.inTransit += messages.count }
                post.yield(.fetched(messages.map { Self.record($0, maxEventBytes: maxBytes) }, poll: polls.load(ordering: .acquiring)))
            }
        } catch {
            if mode.withLock({ $0.mode }) == .stop { return }
            post.yield(.pollFailed(error))
        }
    }

    /// How many records the next poll may fetch, nil to stop polling; numbers the poll. On
    /// the poll thread: while the buffer has no room, waits there for the loop to make some.
    private func nextPollLimit() -> Int? {
        while true {
            let (current, inTransit) = mode.withLock { ($0.mode, $0.inTransit) }
            let limit: Int
            switch current {
            case .stop: return nil
            case .fetch(let room) where room > inTransit: limit = room - inTransit
            case .fetch, .waitForRoom:
                room.wait(atMost: .milliseconds(2))
                continue
            case .serveOnly: limit = 100
            }
            polls.add(1, ordering: .acquiringAndReleasing)
            return limit
        }
    }

    private static func record(_ message: KafkaMessage, maxEventBytes: Int) -> FetchedRecord<CycleRecord> {
        // The value counts twice: its bytes, and the event decoded from them.
        let size = 2 * (message.value?.count ?? 0) + (message.key?.count ?? 0)
            + message.headers.reduce(0) { $0 + $1.key.utf8.count + ($1.value?.count ?? 0) }
        var record = CycleRecord(message)
        record.predecode(maxBytes: maxEventBytes)
        return FetchedRecord(
            partition: message.topicPartition, offset: message.offset, key: message.key, size: size + 64, payload: record)
    }

    /// Performs commits, seeks, pauses and resumes one after another, in the machine's order.
    private func controlLoop() async {
        for await request in controls {
            switch request {
            case .commit(let id, let offsets):
                do {
                    try await consumer.commit(offsets)
                    metrics.commitsSucceeded.increment()
                    status.withLock { s in
                        s.commits += 1
                        s.commitsFailingSince = nil
                    }
                    post.yield(.commitAnswered(id, succeeded: true))
                } catch {
                    metrics.commitsFailed.increment()
                    status.withLock { s in
                        s.failedCommits += 1
                        if s.commitsFailingSince == nil { s.commitsFailingSince = .now }
                    }
                    logger.warning("commit failed; retried", metadata: ["offsets": "\(offsets)", "error": "\(error)"])
                    if consumer.isRebalancing { post.yield(.rebalancing) }
                    post.yield(.commitAnswered(id, succeeded: false))
                }
            case .seek(let position, let generation):
                do {
                    try await consumer.seek([position])
                    logger.info("rewound to a record not done", metadata: ["position": "\(position)"])
                    post.yield(.seekDone(position.topicPartition, generation: generation, afterPoll: polls.load(ordering: .acquiring)))
                } catch let error as KafkaError where error.code == .notAssigned {
                    continue  // given up meanwhile: its next owner reads from the last commit
                } catch {
                    // Going on would read past records not done: stop (a restart resumes from the commits).
                    logger.error("rewind failed", metadata: ["position": "\(position)", "error": "\(error)"])
                    post.yield(.pollFailed(error))
                }
            case .pause(let partitions), .resume(let partitions):
                let pausing = if case .pause = request { true } else { false }
                do {
                    try await pausing ? consumer.pause(partitions) : consumer.resume(partitions)
                } catch let error as KafkaError where error.code == .notAssigned {
                    // Only the owned ones matter; a partition assigned again fetches anyway.
                    let owned = consumer.assignment
                    let mine = partitions.filter { owned.contains($0) }
                    if !mine.isEmpty { try? await pausing ? consumer.pause(mine) : consumer.resume(mine) }
                } catch {
                    logger.warning(pausing ? "pause failed" : "resume failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

extension EngineMachine.Event {
    fileprivate var isCycleFinished: Bool { if case .cycleFinished = self { true } else { false } }
}

/// Wakes a thread that waits for something another one does. A ring while nobody waits
/// is kept for the next wait, so one between a check and the wait after it is not lost.
final class Doorbell: @unchecked Sendable {  // `rung` is only touched with `condition` held
    private let condition = NSCondition()
    private var rung = false

    func ring() {
        condition.lock()
        rung = true
        condition.signal()
        condition.unlock()
    }

    /// Returns at the next ring (at once if one is kept), or after `limit`.
    func wait(atMost limit: Duration) {
        condition.lock()
        if !rung { _ = condition.wait(until: Date(timeIntervalSinceNow: limit.seconds)) }
        rung = false
        condition.unlock()
    }
}
