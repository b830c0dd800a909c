import W3CTraceContext

/// The W3C trace context a record carried (`traceparent`, optionally `tracestate`), and
/// the child span each processing attempt gets under it.
struct RecordTrace: Sendable {
    let parent: TraceContext

    /// The record's trace context; nil when it has no `traceparent` header.
    /// - Throws: when the header is there but not a valid W3C `traceparent`.
    init?(_ record: CycleRecord) throws {
        guard let header = record.header("traceparent") else { return nil }
        parent = try TraceContext(traceParentHeaderValue: header, traceStateHeaderValue: record.header("tracestate"))
    }

    var traceID: String { parent.traceID.description }

    /// A new span under the record's: same trace, flags and state, a random span id.
    func childSpan() -> TraceContext {
        TraceContext(traceID: parent.traceID, spanID: .random(), flags: parent.flags, state: parent.state)
    }
}
