import Foundation
import RdKafka
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// glibc has `tgkill`, which Swift's Glibc module does not export: it sends a signal to
/// one thread of this process.
@_silgen_name("tgkill")
private func tgkill(_ process: pid_t, _ thread: pid_t, _ signal: Int32) -> Int32

@Suite("Embedded cluster", .timeLimit(.minutes(2)))
struct EmbeddedClusterTests {
    @Test("A signal with a handler that reaches the cluster's own thread does not stop it (librdkafka's mock thread gives up on an interrupted poll)")
    func survivesSignals() async throws {
        // A handler that does nothing: a signal with a handler interrupts a blocking poll().
        // SIGPROF: the threads of Swift's pool leave it unblocked, so a thread created from
        // one would take it.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        var previous = sigaction()
        sigaction(SIGPROF, &action, &previous)
        defer { sigaction(SIGPROF, &previous, nil) }

        let before = Self.threads(named: "rdk:mock")
        let test = try TestCluster(brokers: 1)
        let topic = uniqueName("signal")
        try await test.cluster.createTopic(topic, partitions: 1)
        let mine = Self.threads(named: "rdk:mock").subtracting(before)
        #expect(!mine.isEmpty, "the cluster's thread was not found: the scenario did not happen")
        // Several times: one that arrives while the thread is not in poll() interrupts nothing.
        var delivered = 0
        for _ in 0..<20 {
            for thread in mine where tgkill(getpid(), thread, SIGPROF) == 0 { delivered += 1 }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(delivered > 0, "no signal was sent: the scenario did not happen")

        // Still serving: a record is acknowledged and read back.
        let producer = try test.producer(deliveryTimeout: .seconds(10))
        try await producer.send(topic: topic, key: [1], value: [2])
        try await producer.close()
        let consumer = try await test.consumer(group: uniqueName("g"), topics: [topic])
        #expect(try await receive(1, from: consumer, within: .seconds(20)).count == 1)
        try await consumer.close()
    }

    /// This process's threads whose name is `name`.
    private static func threads(named name: String) -> Set<pid_t> {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return Set(
            tasks.compactMap { task in
                let comm = try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)
                return comm?.trimmingCharacters(in: .newlines) == name ? pid_t(task) : nil
            })
    }
}
