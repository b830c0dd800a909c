import Testing

@testable import Orchestration

@Suite("Concurrency slots", .timeLimit(.minutes(1)))
struct ConcurrencySlotsTests {
    @Test("A slot given back goes to the first waiter; a waiter cancelled takes none and leaks none")
    func handOverAndCancel() async throws {
        let slots = ConcurrencySlots(limit: 1)
        #expect(await slots.acquire() == (true, false))
        let cancelled = Task { await slots.acquire() }
        let waiting = Task { await slots.acquire() }
        while slots.waiting < 2 { await Task.yield() }
        cancelled.cancel()
        #expect(await cancelled.value == (false, true))
        slots.release()
        #expect(await waiting.value == (true, true))
        #expect(slots.inUse == 1)
        slots.release()
        #expect(slots.inUse == 0)
    }

    @Test("A higher limit wakes waiters at once; a lower one takes effect as slots come back")
    func limitChanges() async throws {
        let slots = ConcurrencySlots(limit: 2)
        _ = await slots.acquire()
        _ = await slots.acquire()
        let waiters = (0..<2).map { _ in Task { await slots.acquire() } }
        while slots.waiting < 2 { await Task.yield() }
        slots.setLimit(4)
        for waiter in waiters { #expect(await waiter.value.acquired) }
        #expect(slots.inUse == 4)
        slots.setLimit(1)
        let late = Task { await slots.acquire() }
        while slots.waiting < 1 { await Task.yield() }
        for _ in 0..<3 { slots.release() }
        #expect(slots.inUse == 1)
        #expect(slots.waiting == 1)
        slots.release()
        #expect(await late.value == (true, true))
        #expect(slots.inUse == 1)
    }
}
