import RdKafka

/// How the consumer engine cuts, overlaps and commits cycles.
struct EngineSettings: Sendable {
    /// At most this many records per cycle.
    var maxEvents: Int
    /// A buffered record waits at most this long for its cycle to fill.
    var maxWait: Duration
    /// Cycles that may run at once (1: one after another, as before pipelining).
    var cyclesInFlight: Int
    /// Records fetched but not yet in a cycle, at most (records, bytes); fetching stops above either.
    var bufferRecords: Int
    var bufferBytes: Int
    /// How long a revocation waits for the cycles holding its partitions.
    var revocationTimeout: Duration
    /// How long a stop waits for the cycles in flight before cancelling them.
    var shutdownTimeout: Duration
    /// How far commits may fall behind: a cycle starts only while the records in cycles or
    /// done but not committed stay within (`cyclesInFlight` + this) × `maxEvents`, which is
    /// therefore the most a crash can make regen process again.
    var commitBacklogCycles = ServiceSettings.commitBacklogCycles
    /// After the group refused a commit because it is rebalancing, no cycle starts until
    /// this member's next assignment, a commit that lands, or this long (each refused retry
    /// starts it again; a member whose assignment does not change may get no callback).
    var rebalanceHold = Duration.seconds(2)
    /// A buffer full this long pauses fetching (so the consumer can keep polling for rebalances).
    var pauseAfter = Duration.seconds(1)
    /// After a cycle in which nothing could be done (breaker open), no cycle starts for this long.
    var holdOff = Duration.milliseconds(500)
    /// A failed commit is retried after this long, doubling up to ``commitRetryCap``.
    var commitRetry = Duration.milliseconds(100)
    var commitRetryCap = Duration.seconds(2)
    /// After a stop's cycles are over, commits are tried this much longer.
    var finalCommitGrace = Duration.seconds(5)
}

/// A record as the engine sees it: where it is, what orders it, what it weighs, and what
/// the executor hands to the cycle.
struct FetchedRecord<Payload: Sendable>: Sendable {
    var partition: TopicPartition
    var offset: Int64
    var key: [UInt8]?
    var size: Int
    var payload: Payload
}

/// The consumer engine's state and its transitions: everything the engine knows about
/// owned partitions, buffered records, cycles in flight, commits, revocations and stopping,
/// changed only by ``handle(_:at:)``, which returns what the executor must do. It performs
/// no I/O and reads no clock, so tests drive it with event sequences.
///
/// The rules that make it safe:
/// - A partition's records are a *window* from its last commit onward, in offset order;
///   a record joins it only if it continues the partition (offset at or past the next
///   expected one, and exactly the seek position after a rewind until the seek is known to
///   have taken effect). Anything else is dropped.
/// - A partition's commit position is the end of the *done prefix* of its window: a commit
///   never passes a record that is not done.
/// - A cycle's result counts for a record only if the record is still in the window as part
///   of that very cycle (cycle ids are never reused): results of cycles that lost the
///   partition (revoked, lost, rewound) change nothing.
/// - Two cycles in flight never hold the same key, and a record without a key never runs
///   beside another record of its partition.
/// - A revocation releases its partitions once no cycle holds them and their done work is
///   committed, or at its deadline; from then on they are gone, whatever still runs.
struct EngineMachine<Payload: Sendable> {
    typealias CycleID = Int
    typealias CommitID = Int
    typealias RevocationID = Int
    typealias Instant = ContinuousClock.Instant

    enum Event: Sendable {
        /// Records from one poll; `poll` numbers the poll (polls started later have higher numbers).
        case fetched([FetchedRecord<Payload>], poll: Int)
        case assigned(Set<TopicPartition>)
        /// Partitions to give up; the consumer waits for ``Action/release(_:)``.
        case revoked(Set<TopicPartition>, RevocationID)
        case lost(Set<TopicPartition>)
        /// A cycle ended: the offsets done (processed or dead-lettered), per partition.
        case cycleFinished(CycleID, done: [TopicPartition: [Int64]])
        /// A cycle could not end normally (the orchestrator threw): the engine stops.
        case cycleFailed(CycleID, any Error)
        case commitAnswered(CommitID, succeeded: Bool)
        /// The group refused a commit because it is rebalancing: partitions may move, so
        /// work started now would likely be done twice.
        case rebalancing
        /// A seek returned; polls numbered above `afterPoll` started after it.
        case seekDone(TopicPartition, generation: UInt64, afterPoll: Int)
        /// The consumer failed for good: the engine stops.
        case pollFailed(any Error)
        case stopRequested
        /// Time passed (see ``nextDeadline``).
        case tick
    }

    enum Action: Sendable {
        case startCycle(CycleID, [Payload])
        case commit(CommitID, [TopicPartitionOffset])
        /// Move the fetch position back to the first record not done.
        case seek(TopicPartitionOffset, generation: UInt64)
        case pause([TopicPartition])
        case resume([TopicPartition])
        /// Let the consumer give up the revoked partitions.
        case release(RevocationID)
        /// The stop's deadline passed: cancel the cycles in flight.
        case cancelCycles
        /// Done: nothing in flight, commits settled. `failure` is why the engine stopped, if it failed.
        case finish(failure: (any Error)?)
    }

    /// What the poller should do now.
    enum PollMode: Equatable, Sendable {
        /// Fetch at most this many records.
        case fetch(Int)
        /// The buffer is full: wait for room (briefly; fetching pauses if it lasts).
        case waitForRoom
        /// Poll only to serve rebalances (fetching paused, or stopping): what arrives is dropped.
        case serveOnly
        /// The engine finished.
        case stop
    }

    // MARK: State

    enum EntryState: Equatable {
        case buffered
        case inCycle(CycleID)
        case done
    }

    struct Entry {
        var offset: Int64
        var key: [UInt8]?
        var size: Int
        var state: EntryState
        var payload: Payload?
    }

    struct PartitionState {
        /// Changes on every assignment and rewind; a seek's answer names it.
        var generation: UInt64
        /// The window: records from the last commit on, ascending; `head` skips the popped ones.
        var entries: [Entry] = []
        var head = 0
        /// Index of the first buffered entry (those before it are in a cycle or done).
        var firstBuffered = 0
        /// The lowest offset the next record may have; nil right after assignment.
        var next: Int64?
        /// After a rewind: the seek position, which the next record must equal exactly, unless
        /// its poll started after the seek returned (the position may not exist any more).
        var seekTo: Int64?
        var seekTookEffectAfterPoll: Int?
        /// The end of the done prefix (the position to commit), the position being committed,
        /// and the last position the group acknowledged.
        var target: Int64?
        var committing: Int64?
        var committed: Int64?
        /// Done records behind `target` that the group has not acknowledged, and how many of
        /// them the commit in flight covers.
        var uncommitted = 0
        var uncommittedInCommit = 0
        var paused = false
        var revocation: RevocationID?

        /// Records in cycles or done but not committed.
        var unsettled: Int { firstBuffered - head + uncommitted }
        var bufferedCount: Int { entries.count - firstBuffered }
        var needsCommit: Bool {
            guard let target else { return false }
            return committing == nil && target != committed
        }

        /// The index of `offset` in the window, by binary search.
        func index(of offset: Int64) -> Int? {
            var low = head
            var high = entries.count
            while low < high {
                let mid = (low + high) / 2
                if entries[mid].offset < offset { low = mid + 1 } else { high = mid }
            }
            return low < entries.count && entries[low].offset == offset ? low : nil
        }
    }

    struct CycleState {
        /// The offsets of the cycle, per partition.
        var records: [TopicPartition: [Int64]]
        var keys: [[UInt8]]
        var nilKeys: [TopicPartition: Int]
    }

    struct Revocation {
        var partitions: Set<TopicPartition>
        var deadline: Instant
        var commitTried = false
    }

    let settings: EngineSettings
    private(set) var partitions: [TopicPartition: PartitionState] = [:]
    private var order: [TopicPartition] = []
    private var rotation = 0
    private(set) var cycles: [CycleID: CycleState] = [:]
    private var nextCycle: CycleID = 1
    private var generations: UInt64 = 0
    private var keysInFlight: [[UInt8]: Int] = [:]
    private var nilKeysInFlight: [TopicPartition: Int] = [:]
    private var recordsInFlight: [TopicPartition: Int] = [:]
    private(set) var bufferedRecords = 0
    private(set) var bufferedBytes = 0
    private var oldestBuffered: Instant?
    private var fullSince: Instant?
    private var holdOffUntil: Instant?
    private var rebalanceHoldUntil: Instant?
    private var commit: (id: CommitID, offsets: [TopicPartitionOffset])?
    private var nextCommit: CommitID = 1
    private var commitFailures = 0
    private var commitRetryAt: Instant?
    /// Records in cycles or done but not committed, over all partitions (see ``EngineSettings/commitBacklogCycles``).
    var unsettled: Int { partitions.values.reduce(0) { $0 + $1.unsettled } }
    private var revocations: [RevocationID: Revocation] = [:]
    private(set) var stopping = false
    private var stopDeadline: Instant?
    private var cancelled = false
    private var commitFailedWhileStopping = false
    private(set) var failure: (any Error)?
    private(set) var finished = false
    private var lastEvent: Instant?
    /// Records dropped because they did not continue their partition (for the log and tests).
    private(set) var droppedOutOfOrder = 0
    /// Records in a cycle, or done but not committed, when their partition was given up
    /// (revoked, lost, or assigned afresh): work the partition's next reader may do again.
    private(set) var givenUpUncommitted = 0

    init(settings: EngineSettings) {
        self.settings = settings
    }

    /// The partitions owned (revoking ones included).
    var owned: Set<TopicPartition> { Set(partitions.keys) }

    var isBufferFull: Bool { bufferedRecords >= settings.bufferRecords || bufferedBytes >= settings.bufferBytes }

    var pollMode: PollMode {
        if finished { return .stop }
        if stopping { return .serveOnly }
        if isBufferFull {
            let unpaused = partitions.values.contains { !$0.paused && $0.revocation == nil }
            return unpaused ? .waitForRoom : .serveOnly
        }
        return .fetch(settings.bufferRecords - bufferedRecords)
    }

    /// When the engine next needs a ``Event/tick``: the earliest deadline after the last
    /// event (those before it were acted on then, or wait for another event).
    var nextDeadline: Instant? {
        var deadlines: [Instant] = []
        if let oldestBuffered, canStartCycle(ignoringHoldOff: true) { deadlines.append(oldestBuffered + settings.maxWait) }
        if let holdOffUntil { deadlines.append(holdOffUntil) }
        if let rebalanceHoldUntil { deadlines.append(rebalanceHoldUntil) }
        if let commitRetryAt { deadlines.append(commitRetryAt) }
        if let fullSince { deadlines.append(fullSince + settings.pauseAfter) }
        deadlines += revocations.values.map(\.deadline)
        if let stopDeadline { deadlines += [stopDeadline, stopDeadline + settings.finalCommitGrace] }
        return deadlines.filter { deadline in lastEvent.map { deadline > $0 } ?? true }.min()
    }

    // MARK: Transitions

    mutating func handle(_ event: Event, at now: Instant) -> [Action] {
        guard !finished else { return [] }
        lastEvent = now
        var actions: [Action] = []
        switch event {
        case .fetched(let records, let poll): accept(records, poll: poll, at: now)
        case .assigned(let assigned):
            rebalanceHoldUntil = nil
            assign(assigned)
        case .revoked(let revoked, let id): revoke(revoked, id: id, at: now)
        case .lost(let lost):
            forgetRevocations(of: lost)
            for partition in lost { remove(partition) }
        case .cycleFinished(let id, let done): finishCycle(id, done: done, at: now, &actions)
        case .cycleFailed(let id, let error):
            fail(error, at: now)
            finishCycle(id, done: [:], at: now, &actions)
        case .commitAnswered(let id, let succeeded): answer(id, succeeded: succeeded, at: now)
        case .rebalancing: rebalanceHoldUntil = now + settings.rebalanceHold
        case .seekDone(let partition, let generation, let afterPoll):
            if partitions[partition]?.generation == generation, partitions[partition]?.seekTo != nil {
                partitions[partition]?.seekTookEffectAfterPoll = afterPoll
            }
        case .pollFailed(let error): fail(error, at: now)
        case .stopRequested: stop(at: now)
        case .tick: break
        }
        advance(at: now, &actions)
        return actions
    }

    /// Everything that may follow any event: revocations released, cycles started,
    /// commits sent, fetching paused or resumed, the stop completed.
    private mutating func advance(at now: Instant, _ actions: inout [Action]) {
        if let until = holdOffUntil, now >= until { holdOffUntil = nil }
        if let until = rebalanceHoldUntil, now >= until { rebalanceHoldUntil = nil }
        if let at = commitRetryAt, now >= at { commitRetryAt = nil }
        advanceRevocations(at: now, &actions)
        if stopping, let deadline = stopDeadline, now >= deadline, !cycles.isEmpty, !cancelled {
            cancelled = true
            actions.append(.cancelCycles)
        }
        while canStartCycle(ignoringHoldOff: false), let cycle = formCycle(at: now) { actions.append(cycle) }
        sendCommit(&actions)
        adjustFetching(at: now, &actions)
        if stopping && cycles.isEmpty && revocations.isEmpty {
            let committed = commit == nil && !partitions.values.contains { $0.needsCommit }
            let gaveUp = stopDeadline.map { now >= $0 + settings.finalCommitGrace } ?? false
            // A failed engine tries its final commit once: its consumer may be the reason it failed.
            let failedOnce = failure != nil && commit == nil && commitFailedWhileStopping
            if committed || gaveUp || failedOnce {
                finished = true
                actions.append(.finish(failure: failure))
            }
        }
    }

    /// Takes a partition's state out of the dictionary, so that changing its window copies
    /// nothing (a copy left in the dictionary would make every append copy the array).
    private mutating func takeOut(_ partition: TopicPartition) -> PartitionState? {
        partitions.removeValue(forKey: partition)
    }

    private mutating func accept(_ records: [FetchedRecord<Payload>], poll: Int, at now: Instant) {
        var start = 0
        while start < records.count {
            // Records come in runs of one partition: each run takes the state out once.
            let partition = records[start].partition
            var end = start + 1
            while end < records.count && records[end].partition == partition { end += 1 }
            defer { start = end }
            guard !stopping, var state = takeOut(partition) else { continue }
            defer { partitions[partition] = state }
            guard state.revocation == nil else { continue }
            for record in records[start..<end] {
                if let seekTo = state.seekTo {
                    if record.offset == seekTo || poll > (state.seekTookEffectAfterPoll ?? .max) {
                        state.seekTo = nil
                        state.seekTookEffectAfterPoll = nil
                    } else {
                        droppedOutOfOrder += 1
                        continue
                    }
                }
                if let next = state.next, record.offset < next {
                    droppedOutOfOrder += 1
                    continue
                }
                state.next = record.offset + 1
                state.entries.append(
                    Entry(offset: record.offset, key: record.key, size: record.size, state: .buffered, payload: record.payload))
                bufferedRecords += 1
                bufferedBytes += record.size
                if oldestBuffered == nil { oldestBuffered = now }
            }
        }
        if isBufferFull { fullSince = fullSince ?? now }
    }

    private mutating func assign(_ assigned: Set<TopicPartition>) {
        forgetRevocations(of: assigned)
        for partition in assigned {
            remove(partition)  // an assignment the engine still knew was given up without it: start afresh
            generations += 1
            partitions[partition] = PartitionState(generation: generations)
        }
        order = partitions.keys.sorted()
    }

    private mutating func revoke(_ revoked: Set<TopicPartition>, id: RevocationID, at now: Instant) {
        let mine = revoked.filter { partitions[$0] != nil }
        for partition in mine {
            dropBuffered(partition)
            partitions[partition]?.revocation = id
        }
        let wait = max(settings.revocationTimeout - .seconds(1), settings.revocationTimeout / 2)
        revocations[id] = Revocation(partitions: Set(mine), deadline: now + wait)
    }

    /// Releases a revocation when its partitions are free and their work committed (one
    /// try), or at its deadline. Released partitions are forgotten.
    private mutating func advanceRevocations(at now: Instant, _ actions: inout [Action]) {
        for (id, revocation) in revocations.sorted(by: { $0.key < $1.key }) {
            let free = revocation.partitions.allSatisfy { (recordsInFlight[$0] ?? 0) == 0 }
            let settled = revocation.partitions.allSatisfy {
                guard let state = partitions[$0] else { return true }
                return state.committing == nil && (!state.needsCommit || revocation.commitTried)
            }
            if (free && settled) || now >= revocation.deadline {
                revocations[id] = nil
                for partition in revocation.partitions { remove(partition) }
                actions.append(.release(id))
            } else if free && commit == nil && !revocation.commitTried {
                revocations[id]?.commitTried = true
                commitRetryAt = nil  // the last chance to commit them: now, not after a backoff
            }
        }
    }

    /// A revocation whose partitions were lost or assigned again (the consumer stopped
    /// waiting for it) must not remove them when it is released.
    private mutating func forgetRevocations(of given: Set<TopicPartition>) {
        for id in revocations.keys { revocations[id]!.partitions.subtract(given) }
    }

    private mutating func remove(_ partition: TopicPartition) {
        guard let unsettled = partitions[partition]?.unsettled else { return }
        givenUpUncommitted += unsettled
        dropBuffered(partition)
        partitions[partition] = nil
        order.removeAll { $0 == partition }
    }

    private mutating func dropBuffered(_ partition: TopicPartition) {
        guard var state = takeOut(partition) else { return }
        unbuffer(state.entries[state.firstBuffered...])
        state.entries.removeSubrange(state.firstBuffered...)
        partitions[partition] = state
    }

    /// Takes buffered entries, about to be dropped, out of the buffer's accounting.
    private mutating func unbuffer(_ dropped: ArraySlice<Entry>) {
        for entry in dropped {
            bufferedRecords -= 1
            bufferedBytes -= entry.size
        }
        if bufferedRecords == 0 { oldestBuffered = nil }
        if !isBufferFull { fullSince = nil }
    }

    private func canStartCycle(ignoringHoldOff: Bool) -> Bool {
        !stopping && bufferedRecords > 0 && cycles.count < settings.cyclesInFlight
            && (ignoringHoldOff || (holdOffUntil == nil && rebalanceHoldUntil == nil))
            && unsettled + settings.maxEvents <= (settings.cyclesInFlight + settings.commitBacklogCycles) * settings.maxEvents
    }

    /// Takes eligible buffered records, partition by partition (a partition's records in
    /// offset order, stopping at its first record whose key is busy), starting from a
    /// partition that rotates from cycle to cycle. Starts a cycle when it has `maxEvents`,
    /// or when the oldest buffered record has waited `maxWait`.
    ///
    /// Whole partitions rather than a share of each: a cycle then holds fewer distinct keys,
    /// and a processor that works per cycle does less (the template processor renders a
    /// subject once per cycle however many of its events the cycle holds: fair shares of 32
    /// partitions rendered 2.4 times as often and halved its throughput). With several
    /// cycles in flight, the next one draws on other partitions, since the next records of
    /// a partition a cycle holds mostly wait for its keys.
    private mutating func formCycle(at now: Instant) -> Action? {
        let waited = oldestBuffered.map { now >= $0 + settings.maxWait } ?? false
        // Fewer buffered than a cycle and no wait over: no cycle, whatever is eligible.
        guard bufferedRecords >= settings.maxEvents || waited else { return nil }
        var picks: [(TopicPartition, Range<Int>)] = []
        var count = 0
        let start = order.isEmpty ? 0 : rotation % order.count
        for step in 0..<order.count where count < settings.maxEvents {
            let partition = order[(start + step) % order.count]
            guard let state = partitions[partition], state.revocation == nil, state.bufferedCount > 0 else { continue }
            var end = state.firstBuffered
            while end < state.entries.count && count < settings.maxEvents && isEligible(key: state.entries[end].key, of: partition) {
                end += 1
                count += 1
            }
            if end > state.firstBuffered { picks.append((partition, state.firstBuffered..<end)) }
        }
        guard count > 0, count >= settings.maxEvents || waited else { return nil }
        rotation += 1
        let id = nextCycle
        nextCycle += 1
        var payloads: [Payload] = []
        payloads.reserveCapacity(count)
        var cycle = CycleState(records: [:], keys: [], nilKeys: [:])
        for (partition, range) in picks {
            var state = takeOut(partition)!
            var offsets: [Int64] = []
            offsets.reserveCapacity(range.count)
            for index in range {
                // Taken out of the entry, not copied: a copy would retain each of its parts.
                payloads.append(state.entries[index].payload.take()!)
                state.entries[index].state = .inCycle(id)
                offsets.append(state.entries[index].offset)
                bufferedBytes -= state.entries[index].size
                if let key = state.entries[index].key {
                    cycle.keys.append(key)
                    keysInFlight[key, default: 0] += 1
                } else {
                    cycle.nilKeys[partition, default: 0] += 1
                    nilKeysInFlight[partition, default: 0] += 1
                }
            }
            state.firstBuffered = range.upperBound
            partitions[partition] = state
            cycle.records[partition] = offsets
            recordsInFlight[partition, default: 0] += offsets.count
        }
        bufferedRecords -= count
        cycles[id] = cycle
        oldestBuffered = bufferedRecords > 0 ? now : nil
        if !isBufferFull { fullSince = nil }
        return .startCycle(id, payloads)
    }

    private func isEligible(key: [UInt8]?, of partition: TopicPartition) -> Bool {
        guard let key else { return (recordsInFlight[partition] ?? 0) == 0 }
        return (keysInFlight[key] ?? 0) == 0 && (nilKeysInFlight[partition] ?? 0) == 0
    }

    private mutating func finishCycle(_ id: CycleID, done: [TopicPartition: [Int64]], at now: Instant, _ actions: inout [Action]) {
        guard let cycle = cycles.removeValue(forKey: id) else { return }
        for key in cycle.keys { Self.release(key, by: 1, in: &keysInFlight) }
        for (partition, count) in cycle.nilKeys { Self.release(partition, by: count, in: &nilKeysInFlight) }
        for (partition, offsets) in cycle.records { Self.release(partition, by: offsets.count, in: &recordsInFlight) }
        var anyDone = false
        var anyNotDone = false
        for (partition, offsets) in cycle.records {
            guard var state = takeOut(partition) else { continue }
            // Both ascending: walked side by side, without hashing.
            var doneHere = done[partition] ?? []
            if !zip(doneHere, doneHere.dropFirst()).allSatisfy({ $0 < $1 }) { doneHere.sort() }
            var nextDone = 0
            var firstNotDone: Int64?
            var index: Int?
            for offset in offsets {
                // The cycle's entries lie side by side in the window unless a rewind replaced them.
                if let previous = index, previous + 1 < state.entries.count, state.entries[previous + 1].offset == offset {
                    index = previous + 1
                } else {
                    index = state.index(of: offset)
                }
                while nextDone < doneHere.count && doneHere[nextDone] < offset { nextDone += 1 }
                // Only this cycle's own entries: a rewind may have replaced them.
                guard let index, state.entries[index].state == .inCycle(id) else { continue }
                if nextDone < doneHere.count && doneHere[nextDone] == offset {
                    state.entries[index].state = .done
                    anyDone = true
                } else {
                    anyNotDone = true
                    if firstNotDone == nil { firstNotDone = offset }
                }
            }
            if let firstNotDone, !stopping, state.revocation == nil {
                rewind(&state, of: partition, to: firstNotDone, &actions)
            }
            advanceDonePrefix(&state)
            partitions[partition] = state
        }
        if anyNotDone && !anyDone { holdOffUntil = now + settings.holdOff }
    }

    /// Forgets the window from `offset` on (records of other cycles there no longer count)
    /// and seeks back to it.
    private mutating func rewind(
        _ state: inout PartitionState, of partition: TopicPartition, to offset: Int64, _ actions: inout [Action]
    ) {
        guard let from = state.index(of: offset) else { return }
        unbuffer(state.entries[max(from, state.firstBuffered)...])
        state.entries.removeSubrange(from...)
        state.firstBuffered = min(state.firstBuffered, state.entries.count)
        generations += 1
        state.generation = generations
        state.next = offset
        state.seekTo = offset
        state.seekTookEffectAfterPoll = nil
        actions.append(.seek(TopicPartitionOffset(partition, offset: offset), generation: state.generation))
    }

    /// Lowers an in-flight count, forgetting it at zero.
    private static func release<Key: Hashable>(_ key: Key, by count: Int, in counts: inout [Key: Int]) {
        counts[key]! -= count
        if counts[key] == 0 { counts[key] = nil }
    }

    /// Pops the done records at the head of the window; the commit target follows them.
    private func advanceDonePrefix(_ state: inout PartitionState) {
        var head = state.head
        while head < state.firstBuffered && state.entries[head].state == .done {
            state.target = state.entries[head].offset + 1
            state.uncommitted += 1
            head += 1
        }
        state.head = head
        if head > 256 && head * 2 > state.entries.count {
            state.entries.removeSubrange(..<head)
            state.firstBuffered -= head
            state.head = 0
        }
    }

    private mutating func sendCommit(_ actions: inout [Action]) {
        guard commit == nil, commitRetryAt == nil else { return }
        var offsets: [TopicPartitionOffset] = []
        for partition in order {
            guard var state = partitions[partition], state.needsCommit, let target = state.target else { continue }
            state.committing = target
            state.uncommittedInCommit = state.uncommitted
            partitions[partition] = state
            offsets.append(TopicPartitionOffset(partition, offset: target))
        }
        guard !offsets.isEmpty else { return }
        let id = nextCommit
        nextCommit += 1
        commit = (id, offsets)
        actions.append(.commit(id, offsets))
    }

    private mutating func answer(_ id: CommitID, succeeded: Bool, at now: Instant) {
        guard let sent = commit, sent.id == id else { return }
        commit = nil
        for position in sent.offsets {
            guard var state = partitions[position.topicPartition], state.committing == position.offset else { continue }
            state.committing = nil
            if succeeded {
                state.committed = position.offset
                state.uncommitted -= state.uncommittedInCommit
            }
            state.uncommittedInCommit = 0
            partitions[position.topicPartition] = state
        }
        if succeeded {
            commitFailures = 0
            rebalanceHoldUntil = nil
        } else {
            commitFailures += 1
            if stopping { commitFailedWhileStopping = true }
            let delay = settings.commitRetry * (1 << min(commitFailures - 1, 16))
            commitRetryAt = now + min(delay, settings.commitRetryCap)
            // A revocation waiting for its commit releases now: its next owner re-reads.
            for id in revocations.keys { revocations[id]?.commitTried = true }
        }
    }

    private mutating func adjustFetching(at now: Instant, _ actions: inout [Action]) {
        if isBufferFull {
            if let since = fullSince, now >= since + settings.pauseAfter {
                let toPause = order.filter { partitions[$0]?.paused == false && partitions[$0]?.revocation == nil }
                if !toPause.isEmpty {
                    for partition in toPause { partitions[partition]?.paused = true }
                    actions.append(.pause(toPause))
                }
            }
        } else if bufferedRecords * 2 <= settings.bufferRecords && bufferedBytes * 2 <= settings.bufferBytes {
            let toResume = order.filter { partitions[$0]?.paused == true && partitions[$0]?.revocation == nil }
            if !toResume.isEmpty {
                for partition in toResume { partitions[partition]?.paused = false }
                actions.append(.resume(toResume))
            }
        }
    }

    private mutating func stop(at now: Instant) {
        guard !stopping else { return }
        stopping = true
        stopDeadline = now + settings.shutdownTimeout
        for partition in order { dropBuffered(partition) }
    }

    private mutating func fail(_ error: any Error, at now: Instant) {
        if failure == nil { failure = error }
        stop(at: now)
    }
}
