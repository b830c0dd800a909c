internal import CRdKafka
import Logging
import Synchronization

/// A producer whose ``send(topic:key:value:headers:)`` returns when the broker has
/// acknowledged the record (or fails with the reason). Delivery reports are served by a
/// dedicated thread; ``flush(timeout:)`` and ``close(timeout:)`` block on another.
public final class KafkaProducer: Sendable {
    private enum Phase: Sendable { case open, closed }

    private let handle: KafkaHandle
    private let context: ClientContext
    private let reportThread = KafkaThread(name: "kafka-delivery")
    private let controlThread = KafkaThread(name: "kafka-flush")
    private let phase = Mutex(Phase.open)
    private let serving = ServingFlag()
    private let awaiting = AwaitingCount()

    /// Creates a producer.
    /// - Throws: `KafkaError.configuration` naming a rejected property.
    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws {
        context = ClientContext(logger: logger)
        let pointer = try context.makeHandle(RD_KAFKA_PRODUCER, configuration.propertyList) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        }
        handle = KafkaHandle(pointer: pointer)
        reportThread.execute { [handle, serving] in
            while serving.isOn { rd_kafka_poll(handle.pointer, 100) }
        }
    }

    deinit {
        guard phase.withLock({ $0 }) == .open else { return }
        serving.turnOff()
        // Purging and destroying block: done on the delivery thread, never on the caller's.
        // Queued behind the serving loop, they run once its last rd_kafka_poll has returned.
        reportThread.execute { [handle, context] in
            withExtendedLifetime(context) {
                Self.purgeAndServe(handle.pointer)
                rd_kafka_destroy(handle.pointer)
            }
        }
        reportThread.stop()
        controlThread.stop()
    }

    /// The fatal error librdkafka raised, if any (an idempotent producer's lost sequence,
    /// a refused producer id): the producer is then unusable.
    public var fatalError: KafkaError? { context.fatalError }

    /// Records handed to librdkafka whose delivery report has not come yet (neither
    /// acknowledged nor failed). Counted by the producer itself: librdkafka's own queue
    /// length also counts its pending events (a broker-down error, a log line).
    public var outstandingCount: Int { awaiting.value }

    /// Sends one record and waits for the broker's acknowledgement. Waits (without
    /// blocking a thread) while librdkafka's local queue is full.
    /// - Throws: `KafkaError` with the delivery error (e.g. `_MSG_TIMED_OUT` after the
    ///   delivery timeout), `.closed`, or the fatal error that made the producer unusable
    ///   (`isFatal`; e.g. an idempotent producer's broken sequence).
    @discardableResult
    public func send(
        topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], partition: Int? = nil
    ) async throws -> DeliveryReport {
        while true {
            if let fatal = context.fatalError { throw fatal }
            do {
                return try await withCheckedThrowingContinuation { continuation in
                    let box = Unmanaged.passRetained(DeliveryPromise(continuation, awaiting: awaiting))
                    // Under the phase lock, so close() cannot destroy the handle mid-enqueue:
                    // it marks the producer closed under the same lock before tearing down.
                    let error = phase.withLock { phase -> KafkaError? in
                        guard phase == .open else { return KafkaError.closed("producer") }
                        // Counted before librdkafka can report it, so the count never dips below zero.
                        awaiting.add(1)
                        let error = enqueue(topic, key, value, headers, partition, opaque: box.toOpaque())
                        if error != nil { awaiting.add(-1) }
                        return error
                    }
                    if let error {
                        box.release()
                        continuation.resume(throwing: error)
                    }
                }
            } catch let error as KafkaError where error.responseCode == .queueFull {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                // A record failed because the producer failed fatally: say that, not the symptom.
                throw context.fatalError ?? error
            }
        }
    }

    private func enqueue(
        _ topic: String, _ key: [UInt8]?, _ value: [UInt8]?, _ headers: [KafkaHeader], _ partition: Int?,
        opaque: UnsafeMutableRawPointer
    ) -> KafkaError? {
        let list = makeHeaders(headers)
        let error: OpaquePointer? = topic.withCString { topicName in
            withOptionalBytes(key) { keyBytes in
                withOptionalBytes(value) { valueBytes in
                    var fields = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 7)
                    fields[0].vtype = RD_KAFKA_VTYPE_TOPIC
                    fields[0].u.cstr = topicName
                    fields[1].vtype = RD_KAFKA_VTYPE_KEY
                    fields[1].u.mem.ptr = UnsafeMutableRawPointer(mutating: keyBytes.baseAddress)
                    fields[1].u.mem.size = keyBytes.count
                    fields[2].vtype = RD_KAFKA_VTYPE_VALUE
                    fields[2].u.mem.ptr = UnsafeMutableRawPointer(mutating: valueBytes.baseAddress)
                    fields[2].u.mem.size = valueBytes.count
                    fields[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    fields[3].u.i = RD_KAFKA_MSG_F_COPY
                    fields[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                    fields[4].u.ptr = opaque
                    fields[5].vtype = RD_KAFKA_VTYPE_PARTITION
                    fields[5].u.i32 = Int32(partition ?? -1)
                    fields[6].vtype = RD_KAFKA_VTYPE_HEADERS
                    fields[6].u.headers = list
                    return rd_kafka_produceva(handle.pointer, fields, fields.count)
                }
            }
        }
        guard let error else { return nil }  // the headers now belong to librdkafka
        rd_kafka_headers_destroy(list)
        return KafkaError.consuming(error, context: "produce to \(topic)")
    }

    private func makeHeaders(_ headers: [KafkaHeader]) -> OpaquePointer {
        let list = rd_kafka_headers_new(headers.count)!
        for header in headers {
            if let value = header.value {
                value.withUnsafeBytes { _ = rd_kafka_header_add(list, header.key, -1, $0.baseAddress, $0.count) }
            } else {
                _ = rd_kafka_header_add(list, header.key, -1, nil, 0)
            }
        }
        return list
    }

    /// Waits until every record sent so far is delivered or failed.
    /// - Throws: `KafkaError.timedOut` when records are still outstanding at the deadline.
    public func flush(timeout: Duration) async throws {
        try await controlThread.run("producer") { [handle] in
            let err = rd_kafka_flush(handle.pointer, timeout.clampedMilliseconds)
            if err == RD_KAFKA_RESP_ERR__TIMED_OUT {
                throw KafkaError.timedOut("flush: \(rd_kafka_outq_len(handle.pointer)) records still outstanding")
            }
        }
    }

    /// Flushes (at most `timeout`), then destroys the producer. Records still outstanding
    /// at the deadline are purged, and their sends fail with `_PURGE_QUEUE` or
    /// `_PURGE_INFLIGHT`: none is left hanging. Safe to call more than once.
    /// - Throws: `KafkaError.timedOut` when records were still outstanding at the deadline.
    public func close(timeout: Duration = .seconds(30)) async throws {
        guard phase.withLock({ phase in
            defer { phase = .closed }
            return phase == .open
        }) else { return }
        let flushError: (any Error)?
        do { try await flush(timeout: timeout); flushError = nil } catch { flushError = error }
        try await controlThread.run("producer") { [handle] in Self.purgeAndServe(handle.pointer) }
        serving.turnOff()
        try await reportThread.run("producer") {}  // the serving loop has ended
        try await controlThread.run("producer") { [handle] in rd_kafka_destroy(handle.pointer) }
        reportThread.stop()
        controlThread.stop()
        if let flushError { throw flushError }
    }

    /// Fails every record still queued or in flight, then serves the delivery reports
    /// that says so, so each waiting ``send(topic:key:value:headers:partition:)`` resumes.
    private static func purgeAndServe(_ handle: OpaquePointer) {
        guard rd_kafka_outq_len(handle) > 0 else { return }
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        let deadline = ContinuousClock.now + .seconds(5)
        while rd_kafka_outq_len(handle) > 0 && ContinuousClock.now < deadline { rd_kafka_poll(handle, 50) }
    }
}

/// Keeps the delivery-report loop going; a class so the loop can hold it without the producer.
private final class ServingFlag: Sendable {
    private let value = Atomic<Bool>(true)
    var isOn: Bool { value.load(ordering: .acquiring) }
    func turnOff() { value.store(false, ordering: .releasing) }
}

/// How many records wait for their delivery report.
private final class AwaitingCount: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func add(_ delta: Int) { count.add(delta, ordering: .relaxed) }
}

/// The continuation of one send, passed to librdkafka as the message opaque and
/// resumed exactly once by the delivery callback.
private final class DeliveryPromise {
    let continuation: CheckedContinuation<DeliveryReport, any Error>
    let awaiting: AwaitingCount
    init(_ continuation: CheckedContinuation<DeliveryReport, any Error>, awaiting: AwaitingCount) {
        self.continuation = continuation
        self.awaiting = awaiting
    }
}

/// Kafka tells a null key or value (no pointer) from an empty one (a pointer, length 0),
/// so an empty array must still pass a valid address.
private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    guard let bytes else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    guard bytes.isEmpty else { return bytes.withUnsafeBytes(body) }
    var placeholder: UInt8 = 0
    return withUnsafeBytes(of: &placeholder) { body(UnsafeRawBufferPointer(start: $0.baseAddress, count: 0)) }
}

private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    // Balanced with passRetained in send(): each record's promise is released here, once.
    let promise = Unmanaged<DeliveryPromise>.fromOpaque(opaque).takeRetainedValue()
    promise.awaiting.add(-1)
    let m = message.pointee
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        promise.continuation.resume(returning: DeliveryReport(topic: topic, partition: Int(m.partition), offset: m.offset))
    } else {
        promise.continuation.resume(throwing: KafkaError.librdkafka(KafkaResponseCode(m.err), context: "delivery"))
    }
}
