import Foundation
import RdKafka
import Testing

@testable import RegenService

/// The consumer engine's state machine driven by event sequences, no broker: each
/// scenario of the engine issue, then random sequences checked after every step.
@Suite("Engine state machine", .timeLimit(.minutes(3)))
struct EngineMachineTests {
    struct Item: Sendable, Hashable {
        var partition: TopicPartition
        var offset: Int64
        var key: [UInt8]?
    }

    typealias Machine = EngineMachine<Item>
    static let p0 = TopicPartition(topic: "t", partition: 0)
    static let p1 = TopicPartition(topic: "t", partition: 1)

    static func settings(maxEvents: Int = 10, cyclesInFlight: Int = 1) -> EngineSettings {
        EngineSettings(
            maxEvents: maxEvents, maxWait: .milliseconds(100), cyclesInFlight: cyclesInFlight, bufferRecords: 4 * maxEvents,
            bufferBytes: 1 << 20, revocationTimeout: .seconds(10), shutdownTimeout: .seconds(5))
    }

    /// A machine with a clock of its own.
    struct Driver {
        var machine: Machine
        var now = ContinuousClock.now
        var poll = 0

        init(_ settings: EngineSettings = EngineMachineTests.settings()) { machine = Machine(settings: settings) }

        mutating func send(_ event: Machine.Event) -> [Machine.Action] { machine.handle(event, at: now) }

        mutating func advance(_ duration: Duration) -> [Machine.Action] {
            now += duration
            return send(.tick)
        }

        mutating func fetch(_ partition: TopicPartition, _ offsets: some Sequence<Int64>, key: (Int64) -> String? = { "k\($0)" })
            -> [Machine.Action]
        {
            poll += 1
            let records = offsets.map { offset in
                let item = Item(partition: partition, offset: offset, key: key(offset).map { Array($0.utf8) })
                return FetchedRecord(partition: partition, offset: offset, key: item.key, size: 100, payload: item)
            }
            return send(.fetched(records, poll: poll))
        }
    }

    static func cycles(_ actions: [Machine.Action]) -> [(Machine.CycleID, [Item])] {
        actions.compactMap { if case .startCycle(let id, let items) = $0 { (id, items) } else { nil } }
    }

    static func commits(_ actions: [Machine.Action]) -> [(Machine.CommitID, [TopicPartitionOffset])] {
        actions.compactMap { if case .commit(let id, let offsets) = $0 { (id, offsets) } else { nil } }
    }

    static func seeks(_ actions: [Machine.Action]) -> [(TopicPartitionOffset, UInt64)] {
        actions.compactMap { if case .seek(let position, let generation) = $0 { (position, generation) } else { nil } }
    }

    static func releases(_ actions: [Machine.Action]) -> [Machine.RevocationID] {
        actions.compactMap { if case .release(let id) = $0 { id } else { nil } }
    }

    static func finished(_ actions: [Machine.Action]) -> Bool {
        actions.contains { if case .finish = $0 { true } else { false } }
    }

    static func allDone(_ items: [Item]) -> [TopicPartition: [Int64]] {
        Dictionary(grouping: items, by: \.partition).mapValues { $0.map(\.offset) }
    }

    @Test("A full cycle starts at once; its work is committed when it is done")
    func basicCycle() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let started = Self.cycles(d.fetch(Self.p0, 0..<10))
        #expect(started.count == 1)
        #expect(started.first?.1.map(\.offset) == Array(0..<10))
        let actions = d.send(.cycleFinished(started[0].0, done: Self.allDone(started[0].1)))
        #expect(Self.commits(actions).map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 10)]])
        #expect(Self.commits(d.send(.commitAnswered(Self.commits(actions)[0].0, succeeded: true))).isEmpty)
    }

    @Test("A partial cycle waits for maxWait, then starts with what it has")
    func maxWait() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        #expect(Self.cycles(d.fetch(Self.p0, 0..<3)).isEmpty)
        #expect(d.machine.nextDeadline == d.now + .milliseconds(100))
        #expect(Self.cycles(d.advance(.milliseconds(50))).isEmpty)
        #expect(Self.cycles(d.advance(.milliseconds(50))).first?.1.count == 3)
    }

    @Test("A record not done rewinds its partition; records from before the seek are dropped, the re-read ones taken")
    func rewind() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        _ = d.fetch(Self.p0, 10..<15)  // buffered meanwhile
        let actions = d.send(.cycleFinished(cycle.0, done: [Self.p0: [0, 1, 2, 3, 5]]))
        let seek = Self.seeks(actions)
        #expect(seek.map(\.0) == [TopicPartitionOffset(Self.p0, offset: 4)])
        #expect(Self.commits(actions).map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 4)]], "the done prefix only")
        // A poll that started before the seek returned still delivers the old stream: dropped.
        let stalePoll = d.poll + 1
        _ = d.send(.seekDone(Self.p0, generation: seek[0].1, afterPoll: stalePoll))
        d.poll = stalePoll - 1
        #expect(Self.cycles(d.fetch(Self.p0, 15..<25)).isEmpty)
        #expect(d.machine.bufferedRecords == 0)
        // The re-read from the seek position is taken, 5 included (done before, read again).
        let again = Self.cycles(d.fetch(Self.p0, 4..<14))
        #expect(again.first?.1.map(\.offset) == Array(4..<14))
    }

    @Test("After a rewind to a position that no longer exists, the first poll started after the seek is taken")
    func rewindPastCompaction() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let seek = Self.seeks(d.send(.cycleFinished(cycle.0, done: [Self.p0: [0, 1]])))
        _ = d.send(.seekDone(Self.p0, generation: seek[0].1, afterPoll: d.poll))
        // Offset 2 was compacted away: the stream now starts at 3.
        #expect(Self.cycles(d.fetch(Self.p0, 3..<13)).first?.1.first?.offset == 3)
    }

    @Test("Records behind the partition's position are dropped; gaps (compaction) are kept and committed past")
    func gapsAndDuplicates() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        _ = d.fetch(Self.p0, [0, 1, 2, 5, 6])
        _ = d.fetch(Self.p0, [3, 4, 6])  // behind: dropped
        let cycle = Self.cycles(d.fetch(Self.p0, [9, 10, 11, 12, 13]))[0]
        #expect(cycle.1.map(\.offset) == [0, 1, 2, 5, 6, 9, 10, 11, 12, 13])
        #expect(d.machine.droppedOutOfOrder == 3)
        let commit = Self.commits(d.send(.cycleFinished(cycle.0, done: Self.allDone(cycle.1))))
        #expect(commit.map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 14)]])
    }

    @Test("A slow revocation times out and the partition comes back: the old cycle's result is stale, the partition is read again and committed", arguments: [false, true])
    func staleRevocation(cooperative: Bool) {
        var d = Driver(Self.settings(cyclesInFlight: 2))
        _ = d.send(.assigned([Self.p0, Self.p1]))
        let old = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let revoked: Set<TopicPartition> = cooperative ? [Self.p0] : [Self.p0, Self.p1]
        #expect(Self.releases(d.send(.revoked(revoked, 1))).isEmpty, "waits for the cycle holding p0")
        // The deadline passes (revocation timeout − 1 s): released, the cycle still running.
        #expect(Self.releases(d.advance(.seconds(9))) == [1])
        #expect(!d.machine.owned.contains(Self.p0))
        #expect(d.machine.givenUpUncommitted == 10, "the cycle in flight was given up")
        _ = d.send(.assigned(revoked))
        // Re-read from the last commit (none): the old cycle still holds these keys, so they wait.
        #expect(Self.cycles(d.fetch(Self.p0, 0..<10)).isEmpty)
        let late = d.send(.cycleFinished(old.0, done: Self.allDone(old.1)))
        #expect(Self.commits(late).isEmpty, "the old cycle's result no longer counts")
        let again = Self.cycles(late)
        #expect(again.first?.1.map(\.offset) == Array(0..<10), "the partition is read again, not stalled")
        let commit = Self.commits(d.send(.cycleFinished(again[0].0, done: Self.allDone(again[0].1))))
        #expect(commit.map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 10)]])
    }

    @Test("A revocation waits for the cycle, commits its work, then releases")
    func revocationCommits() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        #expect(Self.releases(d.send(.revoked([Self.p0], 7))).isEmpty)
        let finished = d.send(.cycleFinished(cycle.0, done: Self.allDone(cycle.1)))
        let commit = Self.commits(finished)
        #expect(commit.map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 10)]])
        #expect(Self.releases(finished).isEmpty, "not before the commit's answer")
        #expect(Self.releases(d.send(.commitAnswered(commit[0].0, succeeded: false))) == [7], "a refused commit releases too")
    }

    @Test("Work given up uncommitted is counted: cycles in flight and done work not committed when a partition goes, not buffered records, not committed work")
    func givenUpUncommitted() {
        var d = Driver(Self.settings(cyclesInFlight: 2))
        _ = d.send(.assigned([Self.p0, Self.p1]))
        // p0: a cycle done and committed, then 3 records buffered; revoked: nothing at risk.
        let first = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let commit = Self.commits(d.send(.cycleFinished(first.0, done: Self.allDone(first.1))))[0]
        _ = d.send(.commitAnswered(commit.0, succeeded: true))
        _ = d.fetch(Self.p0, 10..<13)
        #expect(Self.releases(d.send(.revoked([Self.p0], 1))) == [1])
        #expect(d.machine.givenUpUncommitted == 0)
        // p1: one cycle done whose commit is refused, another in flight; then lost.
        let done = Self.cycles(d.fetch(Self.p1, 0..<10))[0]
        let refused = Self.commits(d.send(.cycleFinished(done.0, done: Self.allDone(done.1))))[0]
        _ = d.send(.commitAnswered(refused.0, succeeded: false))
        #expect(Self.cycles(d.fetch(Self.p1, 10..<20)).count == 1)
        _ = d.send(.lost([Self.p1]))
        #expect(d.machine.givenUpUncommitted == 20, "10 done and refused, 10 in a cycle")
    }

    @Test("Records fetched before a loss are dropped; the partition restarts from what the group committed")
    func loss() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        _ = d.fetch(Self.p0, 0..<5)
        _ = d.send(.lost([Self.p0]))
        #expect(d.machine.bufferedRecords == 0)
        #expect(Self.cycles(d.fetch(Self.p0, 5..<20)).isEmpty, "not owned: dropped")
        _ = d.send(.assigned([Self.p0]))
        #expect(Self.cycles(d.fetch(Self.p0, 0..<10)).first?.1.map(\.offset) == Array(0..<10))
    }

    @Test("A refused commit is retried after a backoff without stopping cycles, until the work not committed reaches its bound")
    func commitRetry() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        var offset: Int64 = 0
        var commitID: Machine.CommitID?
        for round in 0..<3 {
            let started = Self.cycles(d.fetch(Self.p0, offset..<offset + 10))
            if round < 2 {
                #expect(started.count == 1, "round \(round)")
            } else {
                #expect(started.isEmpty, "(1 in flight + 1) cycles of work not committed: no new cycle")
                #expect(d.machine.unsettled == 20)
                break
            }
            offset += 10
            let actions = d.send(.cycleFinished(started[0].0, done: Self.allDone(started[0].1)))
            if let sent = Self.commits(actions).first {
                commitID = sent.0
                _ = d.send(.commitAnswered(sent.0, succeeded: false))
            }
        }
        #expect(commitID != nil)
        let retried = Self.commits(d.advance(.seconds(3)))
        #expect(retried.map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 20)]])
        let resumed = d.send(.commitAnswered(retried[0].0, succeeded: true))
        #expect(Self.cycles(resumed).count == 1, "the backlog cleared: the waiting records start")
    }

    @Test("A commit refused for a rebalance holds new cycles until the next assignment")
    func rebalanceHold() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let commit = Self.commits(d.send(.cycleFinished(cycle.0, done: Self.allDone(cycle.1))))
        _ = d.send(.rebalancing)
        _ = d.send(.commitAnswered(commit[0].0, succeeded: false))
        #expect(Self.cycles(d.fetch(Self.p0, 10..<20)).isEmpty)
        #expect(Self.cycles(d.send(.assigned([Self.p1]))).count == 1)
    }

    @Test("Two cycles in flight never hold the same key; a record without a key waits for its partition")
    func keysNeverOverlap() {
        var d = Driver(Self.settings(maxEvents: 4, cyclesInFlight: 2))
        _ = d.send(.assigned([Self.p0]))
        let keys: [Int64: String?] = [0: "a", 1: "b", 2: "c", 3: "d", 4: "a", 5: "e", 6: "f", 7: "g"]
        let first = Self.cycles(d.fetch(Self.p0, 0..<8, key: { keys[$0] ?? nil }))
        #expect(first.count == 1, "the second would start with key a, held by the first")
        #expect(Self.cycles(d.advance(.seconds(1))).isEmpty)
        let next = Self.cycles(d.send(.cycleFinished(first[0].0, done: Self.allDone(first[0].1))))
        #expect(next.first?.1.map(\.offset) == [4, 5, 6, 7])
        var e = Driver(Self.settings(maxEvents: 2, cyclesInFlight: 2))
        _ = e.send(.assigned([Self.p0]))
        let keyless = Self.cycles(e.fetch(Self.p0, 0..<4, key: { $0 == 2 ? nil : "k\($0)" }))
        #expect(keyless.map { $0.1.map(\.offset) } == [[0, 1]], "offset 2 has no key: it waits for the partition")
    }

    @Test("Records of several partitions fill one cycle; offsets stay in order per partition")
    func severalPartitions() {
        var d = Driver(Self.settings(maxEvents: 6))
        _ = d.send(.assigned([Self.p0, Self.p1]))
        _ = d.fetch(Self.p0, 0..<3)
        let cycle = Self.cycles(d.fetch(Self.p1, 0..<3))
        #expect(Set(cycle.first?.1 ?? []).count == 6)
        let commit = Self.commits(d.send(.cycleFinished(cycle[0].0, done: Self.allDone(cycle[0].1))))
        #expect(Set(commit.first?.1 ?? []) == [TopicPartitionOffset(Self.p0, offset: 3), TopicPartitionOffset(Self.p1, offset: 3)])
    }

    @Test("With two cycles in flight, the second starts at once from partitions the first does not hold")
    func sharesWithCyclesInFlight() {
        let all = (0..<4).map { TopicPartition(topic: "t", partition: $0) }
        var d = Driver(Self.settings(maxEvents: 10, cyclesInFlight: 2))
        _ = d.send(.assigned(Set(all)))
        d.poll += 1
        let records = all.flatMap { partition in
            (0..<Int64(10)).map { offset in
                let item = Item(partition: partition, offset: offset, key: Array("\(partition.partition)-\(offset)".utf8))
                return FetchedRecord(partition: partition, offset: offset, key: item.key, size: 100, payload: item)
            }
        }
        let cycles = Self.cycles(d.send(.fetched(records, poll: d.poll)))
        #expect(cycles.map { Set($0.1.map(\.partition.partition)) } == [[0], [1]])
        #expect(cycles.map(\.1.count) == [10, 10])
        // The first cycle done, the next one starts from the next partition in turn.
        let next = Self.cycles(d.send(.cycleFinished(cycles[0].0, done: Self.allDone(cycles[0].1))))
        #expect(next.map { Set($0.1.map(\.partition.partition)) } == [[2]])
    }

    @Test("Nothing done (breaker open): the records are read again after a hold-off, not at once")
    func holdOff() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let seek = Self.seeks(d.send(.cycleFinished(cycle.0, done: [:])))
        _ = d.send(.seekDone(Self.p0, generation: seek[0].1, afterPoll: d.poll))
        #expect(Self.cycles(d.fetch(Self.p0, 0..<10)).isEmpty)
        #expect(Self.cycles(d.advance(.milliseconds(500))).count == 1)
    }

    @Test("A stop during a cycle starts nothing new, drops the buffer, commits the cycle's work and finishes")
    func stopDuringCycle() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        _ = d.fetch(Self.p0, 10..<20)
        #expect(!Self.finished(d.send(.stopRequested)))
        #expect(d.machine.bufferedRecords == 0)
        #expect(d.machine.pollMode == .serveOnly)
        let actions = d.send(.cycleFinished(cycle.0, done: Self.allDone(cycle.1)))
        #expect(Self.cycles(actions).isEmpty)
        #expect(!Self.finished(actions), "waits for the commit")
        let commit = Self.commits(actions)
        #expect(Self.finished(d.send(.commitAnswered(commit[0].0, succeeded: true))))
        #expect(d.machine.pollMode == .stop)
    }

    @Test("A stop cancels cycles that outlive the shutdown timeout; what they finished is still committed")
    func stopTimeout() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        _ = d.send(.stopRequested)
        let late = d.advance(.seconds(5))
        #expect(late.contains { if case .cancelCycles = $0 { true } else { false } })
        let actions = d.send(.cycleFinished(cycle.0, done: [Self.p0: [0, 1, 2]]))
        #expect(Self.seeks(actions).isEmpty, "stopping: no rewind")
        #expect(Self.commits(actions).map(\.1) == [[TopicPartitionOffset(Self.p0, offset: 3)]])
    }

    @Test("A stop while a commit is pending waits for its answer, retries a refusal, and gives up after the grace")
    func stopWithPendingCommit() {
        var d = Driver()
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let commit = Self.commits(d.send(.cycleFinished(cycle.0, done: Self.allDone(cycle.1))))
        #expect(!Self.finished(d.send(.stopRequested)))
        #expect(!Self.finished(d.send(.commitAnswered(commit[0].0, succeeded: false))))
        let retry = Self.commits(d.advance(.milliseconds(150)))
        #expect(retry.count == 1)
        #expect(!Self.finished(d.send(.commitAnswered(retry[0].0, succeeded: false))))
        var finished = false
        for _ in 0..<200 where !finished {
            let actions = d.advance(.milliseconds(100))
            finished = Self.finished(actions)
            for sent in Self.commits(actions) { finished = Self.finished(d.send(.commitAnswered(sent.0, succeeded: false))) || finished }
        }
        #expect(finished, "gives up after the shutdown timeout and the final grace")
    }

    @Test("A failed cycle (dead-letter sink unusable) stops the engine without committing that cycle")
    func failedCycle() {
        struct Unusable: Error {}
        var d = Driver(Self.settings(cyclesInFlight: 2))
        _ = d.send(.assigned([Self.p0, Self.p1]))
        let first = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        let second = Self.cycles(d.fetch(Self.p1, 0..<10, key: { "other\($0)" }))[0]
        #expect(!Self.finished(d.send(.cycleFailed(first.0, Unusable()))))
        let actions = d.send(.cycleFinished(second.0, done: Self.allDone(second.1)))
        #expect(Self.commits(actions).map(\.1) == [[TopicPartitionOffset(Self.p1, offset: 10)]], "the other cycle's work only")
        let end = d.send(.commitAnswered(Self.commits(actions)[0].0, succeeded: true))
        #expect(end.contains { if case .finish(let failure) = $0 { failure is Unusable } else { false } })
    }

    @Test("A full buffer stops fetching; if it stays full, fetching pauses, and resumes once it drains")
    func backpressure() {
        var d = Driver(Self.settings(maxEvents: 10, cyclesInFlight: 1))
        _ = d.send(.assigned([Self.p0]))
        let cycle = Self.cycles(d.fetch(Self.p0, 0..<10))[0]
        _ = d.fetch(Self.p0, 10..<50)
        #expect(d.machine.pollMode == .waitForRoom)
        let paused = d.advance(.seconds(1))
        #expect(paused.contains { if case .pause([Self.p0]) = $0 { true } else { false } })
        #expect(d.machine.pollMode == .serveOnly)
        let resumed = d.send(.cycleFinished(cycle.0, done: Self.allDone(cycle.1)))
        #expect(Self.cycles(resumed).count == 1)
        #expect(!resumed.contains { if case .resume = $0 { true } else { false } }, "30 still buffered: over half")
        _ = d.send(.commitAnswered(Self.commits(resumed)[0].0, succeeded: true))
        let next = d.send(.cycleFinished(Self.cycles(resumed)[0].0, done: Self.allDone(Self.cycles(resumed)[0].1)))
        #expect(next.contains { if case .resume([Self.p0]) = $0 { true } else { false } })
    }

    // MARK: Random sequences

    /// A broker and consumer as the machine sees them: partition logs (with compaction
    /// gaps), fetch positions, the group's committed offsets, assignments, and the work
    /// processed. Random events; the invariants are checked after every step; at the end,
    /// with the faults stopped, every partition must be committed to its end.
    struct Simulation {
        var rng: SplitMix
        var driver: Driver
        let partitions = (0..<4).map { TopicPartition(topic: "t", partition: $0) }
        var logs: [TopicPartition: [Item]] = [:]
        var position: [TopicPartition: Int] = [:]
        var committed: [TopicPartition: Int64] = [:]
        var assigned: Set<TopicPartition> = []
        var revoking: [Machine.RevocationID: Set<TopicPartition>] = [:]
        var nextRevocation = 1
        var processed: Set<Item> = []
        var running: [Machine.CycleID: [Item]] = [:]
        var commits: [(Machine.CommitID, [TopicPartitionOffset])] = []
        var seeksToAnswer: [(TopicPartition, UInt64)] = []
        var stale: [(TopicPartition, [Item], poll: Int)] = []
        var failures: [String] = []

        init(seed: UInt64, cyclesInFlight: Int) {
            rng = SplitMix(seed: seed)
            driver = Driver(EngineMachineTests.settings(maxEvents: 8, cyclesInFlight: cyclesInFlight))
            for partition in partitions {
                var offset: Int64 = 0
                logs[partition] = (0..<60).map { _ in
                    offset += rng.next(3) == 0 ? 2 : 1
                    return Item(partition: partition, offset: offset, key: Array("k\(rng.next(12))".utf8))
                }
            }
        }

        func index(in partition: TopicPartition, atOrAfter offset: Int64) -> Int {
            logs[partition]!.firstIndex { $0.offset >= offset } ?? logs[partition]!.count
        }

        mutating func apply(_ actions: [Machine.Action]) {
            for action in actions {
                switch action {
                case .startCycle(let id, let items):
                    let busy = Set(running.values.joined().compactMap(\.key))
                    if items.contains(where: { $0.key.map(busy.contains) ?? false }) { failures.append("cycle \(id) holds a busy key") }
                    for partition in Set(items.map(\.partition)) {
                        let offsets = items.filter { $0.partition == partition }.map(\.offset)
                        if offsets != offsets.sorted() { failures.append("cycle \(id) out of order in \(partition)") }
                        if !assigned.contains(partition) || revoking.values.contains(where: { $0.contains(partition) }) {
                            failures.append("cycle \(id) holds \(partition), not owned or being revoked")
                        }
                    }
                    running[id] = items
                case .commit(let id, let offsets):
                    for position in offsets {
                        if !assigned.contains(position.topicPartition) { failures.append("commit for \(position), not owned") }
                        let notDone = logs[position.topicPartition]!.filter { $0.offset < position.offset && !processed.contains($0) }
                        if let first = notDone.first { failures.append("commit \(position) passes \(first.offset), never done") }
                    }
                    commits.append((id, offsets))
                case .seek(let at, let generation):
                    // A poll already under way still brings a few records of the old stream.
                    let old = logs[at.topicPartition]!.dropFirst(position[at.topicPartition] ?? 0).prefix(3)
                    if !old.isEmpty {
                        driver.poll += 1  // that poll started before the seek returned
                        stale.append((at.topicPartition, Array(old), poll: driver.poll))
                    }
                    position[at.topicPartition] = index(in: at.topicPartition, atOrAfter: at.offset)
                    seeksToAnswer.append((at.topicPartition, generation))
                case .release(let id):
                    if let given = revoking.removeValue(forKey: id) { assigned.subtract(given) }
                case .pause, .resume, .cancelCycles, .finish: break
                }
            }
        }

        var trace: [String] = []
        static let tracing = ProcessInfo.processInfo.environment["ENGINE_TRACE"] != nil

        mutating func send(_ event: Machine.Event) {
            let actions = driver.send(event)
            if Self.tracing && trace.count < 400 {
                func describe(_ e: Any) -> String {
                    "\(e)".replacingOccurrences(of: "RegenServiceTests.EngineMachineTests.Item", with: "")
                        .replacingOccurrences(of: "RdKafka.", with: "").replacingOccurrences(of: "TopicPartition(topic: \"t\", partition: ", with: "p(")
                }
                trace.append("EVENT \(describe(event).prefix(300)) -> \(actions.map { describe($0).prefix(200) })")
            }
            apply(actions)
            if let deadline = driver.machine.nextDeadline, deadline <= driver.now {
                failures.append("next deadline \(deadline) not after the event at \(driver.now): the timer would never fire again")
            }
            let bound = (driver.machine.settings.cyclesInFlight + driver.machine.settings.commitBacklogCycles) * driver.machine.settings.maxEvents
            if driver.machine.unsettled > bound { failures.append("\(driver.machine.unsettled) records unsettled, over \(bound)") }
        }

        mutating func fetch(from partition: TopicPartition) {
            guard case .fetch(let room) = driver.machine.pollMode, assigned.contains(partition) else { return }
            let start = position[partition] ?? 0
            let items = Array(logs[partition]!.dropFirst(start).prefix(min(room, 1 + rng.next(6))))
            position[partition] = start + items.count
            // Polls run one after another: a poll under way during a seek has ended before this one.
            stale.removeAll()
            driver.poll += 1
            send(.fetched(items.map { FetchedRecord(partition: partition, offset: $0.offset, key: $0.key, size: 50, payload: $0) }, poll: driver.poll))
        }

        mutating func finishCycle(allDone: Bool) {
            guard let id = pick(running.keys) else { return }
            let items = running.removeValue(forKey: id)!
            let done = allDone || rng.next(4) > 0 ? items : items.filter { _ in rng.next(3) > 0 }
            processed.formUnion(done)
            send(.cycleFinished(id, done: EngineMachineTests.allDone(done)))
        }

        mutating func answerCommit(succeed: Bool) {
            guard !commits.isEmpty else { return }
            let (id, offsets) = commits.removeFirst()
            if !succeed && rng.next(2) == 0 { send(.rebalancing) }
            if succeed { for position in offsets where assigned.contains(position.topicPartition) { committed[position.topicPartition] = position.offset } }
            send(.commitAnswered(id, succeeded: succeed))
        }

        mutating func assign(_ given: Set<TopicPartition>) {
            for partition in given { position[partition] = index(in: partition, atOrAfter: committed[partition] ?? 0) }
            assigned.formUnion(given)
            stale.removeAll { given.contains($0.0) }
            send(.assigned(given))
        }

        /// A random element, the same for the same seed (sets and dictionaries iterate in a different order in every process).
        mutating func pick<C: Collection>(_ elements: C) -> C.Element? where C.Element: Comparable {
            let sorted = elements.sorted()
            return sorted.isEmpty ? nil : sorted[rng.next(sorted.count)]
        }

        mutating func step() {
            switch rng.next(20) {
            case 0..<7: fetch(from: partitions[rng.next(partitions.count)])
            case 7..<11: finishCycle(allDone: false)
            case 11..<13: answerCommit(succeed: rng.next(5) > 0)
            case 13:
                if let (partition, generation) = seeksToAnswer.first {
                    seeksToAnswer.removeFirst()
                    send(.seekDone(partition, generation: generation, afterPoll: driver.poll))
                }
            case 14:
                if let (partition, items, poll) = stale.popLast(), assigned.contains(partition) {
                    send(.fetched(items.map { FetchedRecord(partition: partition, offset: $0.offset, key: $0.key, size: 50, payload: $0) }, poll: poll))
                }
            case 15:  // revoke (eager: all; cooperative: some)
                let owned = assigned.subtracting(revoking.values.joined())
                guard !owned.isEmpty else { return }
                let given = rng.next(2) == 0 ? owned : Set(owned.sorted().filter { _ in rng.next(2) == 0 })
                guard !given.isEmpty else { return }
                let id = nextRevocation
                nextRevocation += 1
                revoking[id] = given
                send(.revoked(given, id))
            case 16:  // the consumer stopped waiting for a revocation (it timed out): the partitions go
                if let id = pick(revoking.keys) {
                    let given = revoking.removeValue(forKey: id)!
                    assigned.subtract(given)
                    send(.lost(given))
                }
            case 17:
                let owned = assigned.subtracting(revoking.values.joined())
                if let partition = pick(owned) {
                    assigned.remove(partition)
                    send(.lost([partition]))
                }
            case 18:
                let free = Set(partitions).subtracting(assigned)
                if !free.isEmpty { assign(Set(free.sorted().filter { _ in rng.next(2) == 0 })) }
            default:
                // Time passes: to the machine's next deadline, as the executor's timer would, or at random.
                if rng.next(2) == 0, let deadline = driver.machine.nextDeadline {
                    driver.now = deadline
                } else {
                    driver.now += .milliseconds(Int64(rng.next(1500)))
                }
                send(.tick)
            }
        }

        /// Faults stop: everything is assigned, every cycle succeeds, every commit lands.
        mutating func settle() {
            for _ in 0..<3000 {
                for (id, given) in revoking.sorted(by: { $0.key < $1.key }) {
                    revoking[id] = nil
                    assigned.subtract(given)
                    send(.lost(given))
                }
                let free = Set(partitions).subtracting(assigned)
                if !free.isEmpty { assign(free) }
                while let (partition, generation) = seeksToAnswer.first {
                    seeksToAnswer.removeFirst()
                    send(.seekDone(partition, generation: generation, afterPoll: driver.poll))
                }
                stale.removeAll()
                for partition in partitions { fetch(from: partition) }
                while !running.isEmpty { finishCycle(allDone: true) }
                while !commits.isEmpty { answerCommit(succeed: true) }
                // Only the machine's own deadlines move time: a timer it forgot would stall it here.
                if let deadline = driver.machine.nextDeadline {
                    driver.now = deadline
                    send(.tick)
                }
                if partitions.allSatisfy({ committed[$0] == (logs[$0]!.last!.offset + 1) }) { return }
            }
        }
    }

    @Test("Random sequences: no commit past work not done or for a partition not owned, no key in two cycles, and everything committed in the end", arguments: [1, 2, 3])
    func randomSequences(cyclesInFlight: Int) {
        for seed in UInt64(1)...150 {
            var simulation = Simulation(seed: seed * 7919 + UInt64(cyclesInFlight), cyclesInFlight: cyclesInFlight)
            for _ in 0..<400 { simulation.step() }
            simulation.settle()
            let ends = simulation.partitions.map { simulation.logs[$0]!.last!.offset + 1 }
            let committed = simulation.partitions.map { simulation.committed[$0] ?? 0 }
            #expect(simulation.failures.isEmpty, "seed \(seed): \(simulation.failures.prefix(3))")
            if !simulation.failures.isEmpty, Simulation.tracing {
                print(simulation.trace.joined(separator: "\n"))
            }
            #expect(committed == ends, "seed \(seed): committed \(committed), ends \(ends)")
            if !simulation.failures.isEmpty || committed != ends { return }
        }
    }
}

/// A small seeded generator, so a failing sequence can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
