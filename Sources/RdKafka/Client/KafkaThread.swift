import Foundation

/// A dedicated OS thread that runs blocking librdkafka calls one after another, so
/// they never occupy a thread of Swift's cooperative pool.
///
/// `@unchecked Sendable`: `jobs` and `isStopping` are only touched with `condition` held.
final class KafkaThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var isStopping = false

    /// Starts the thread; `name` (15 bytes at most on Linux) shows in debuggers and `top -H`.
    init(name: String) {
        let thread = Thread { [self] in
            Thread.current.name = name  // set from inside: corelibs applies it to the running thread
            self.loop()
        }
        thread.start()
    }

    private func loop() {
        while let job = nextJob() { job() }
    }

    private func nextJob() -> (@Sendable () -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && !isStopping { condition.wait() }
        return jobs.isEmpty ? nil : jobs.removeFirst()
    }

    /// Queues `job`; returns false when the thread is stopping and the job was not queued.
    @discardableResult
    func execute(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isStopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Runs `body` on this thread and returns its result to the awaiting task.
    /// - Throws: what `body` throws, or `KafkaError.closed` when the thread is stopping.
    func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let queued = execute { continuation.resume(with: Result { try body() }) }
            if !queued { continuation.resume(throwing: KafkaError.closed(what)) }
        }
    }

    /// Lets the queued jobs finish, then ends the thread. Does not wait: callers await
    /// their last job (close, destroy) before stopping, so nothing is left to join.
    func stop() {
        condition.lock()
        isStopping = true
        condition.broadcast()
        condition.unlock()
    }
}
