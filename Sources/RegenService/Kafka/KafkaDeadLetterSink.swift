import Orchestration
import RdKafka

/// Writes dead letters to the dead-letter topic with the original key, value and
/// headers, plus why and where from. Returns only once the broker acknowledged. A
/// producer that failed fatally makes the sink unusable (`SinkUnusable`): the service
/// then stops with exit 1 rather than read the same records again forever.
struct KafkaDeadLetterSink: DeadLetterSink {
    let producer: KafkaProducer
    let topic: String

    func deadLetter(_ letter: DeadLetter) async throws {
        let record = letter.record
        var headers = record.headers.map { KafkaHeader(key: $0.key, value: $0.value) }
        if let traceparent = letter.traceparent {
            // The last attempt's span replaces the record's: the dead letter is its child.
            headers.removeAll { $0.key == "traceparent" || $0.key == "tracestate" }
            headers.append(KafkaHeader(key: "traceparent", string: traceparent))
            if let tracestate = letter.tracestate { headers.append(KafkaHeader(key: "tracestate", string: tracestate)) }
        }
        headers += [
            KafkaHeader(key: "regen.error", string: letter.reason),
            KafkaHeader(key: "regen.attempts", string: String(letter.attempts)),
            KafkaHeader(key: "regen.invalid", string: letter.invalidInput ? "true" : "false"),
            KafkaHeader(key: "regen.source.topic", string: record.position.partition.topic),
            KafkaHeader(key: "regen.source.partition", string: String(record.position.partition.partition)),
            KafkaHeader(key: "regen.source.offset", string: String(record.position.offset)),
        ]
        do {
            try await producer.send(topic: topic, key: record.key, value: record.value, headers: headers)
        } catch let error as KafkaError where error.isFatal {
            throw SinkUnusable(reason: "the dead-letter producer failed fatally: \(error)")
        }
    }
}
