import CoreMetrics
import Prometheus

/// Every metric regen exports, with its help text. The Prometheus backend refuses none,
/// but a name missing here has no `# HELP` line, which `promtool check metrics` flags
/// (a test checks the whole `/metrics` output with it).
public enum MetricCatalogue {
    public static let help: [String: String] = [
        "regen_events_total": "Records finished by a cycle, by outcome: succeeded, dead_lettered, not_done (left to be read again).",
        "regen_dead_letters_total": "Records written to the dead-letter topic, by reason class: invalid_input, processing_failed.",
        "regen_attempts_total": "Processing attempts, first tries and retries.",
        "regen_retries_total": "Processing attempts that were retries.",
        "regen_attempt_timeouts_total": "Processing attempts that hit orchestrator.eventTimeoutMs.",
        "regen_cycles_total": "Cycles executed.",
        "regen_cycle_duration_seconds": "Duration of each cycle, from dispatch to its completion step.",
        "regen_cycle_events": "Records per cycle.",
        "regen_rate_limiter_waits_total": "Attempts that waited for the rate limiter.",
        "regen_events_in_flight": "Records being processed now, one per key run holding a concurrency slot.",
        "regen_concurrency_limit": "The concurrency limit now (the adaptive tuner moves it).",
        "regen_breaker_state": "The circuit breaker: 0 closed, 1 half-open, 2 open.",
        "regen_cycles_in_flight": "Cycles running now.",
        "regen_commits_total": "Offset commits, by result: succeeded, failed.",
        "regen_rebalances_total": "Rebalance events this member saw, by kind: assigned, revoked, lost.",
        "regen_given_up_uncommitted_records_total": "Records in a cycle or done but not committed when this member gave up their partition (work its next reader may do again).",
        "regen_assigned_partitions": "Partitions assigned to this member.",
        "regen_group_join_state": "1 for the consumer group join state librdkafka last reported (wait-join, wait-sync, steady, ...), 0 for those seen before; from its statistics.",
        "regen_template_render_duration_seconds": "Time to render and validate one file of the template processor, by artifact (each page of a paginated artifact, failed renders included).",
        "regen_consumer_lag": "High watermark minus committed offset, per assigned partition, from librdkafka's statistics (at most kafka statistics.interval.ms old).",
        "regen_buffered_records": "Records fetched and waiting for a cycle.",
        "regen_buffered_bytes": "Bytes of the records fetched and waiting for a cycle (keys, values, headers).",
        "regen_telemetry_events_total": "Telemetry events, by result: published, dropped (buffer full or undeliverable for 30 s).",
        "regen_traceparent_invalid_total": "Input records whose traceparent header was not a valid W3C trace context (ignored).",
        "process_resident_memory_bytes": "Resident memory of the regen process.",
    ]

    /// Histogram buckets: cycles run from milliseconds to the tens of seconds the
    /// orchestrator targets; cycles hold up to `orchestrator.cycle.maxEvents` records.
    static let durationBuckets: [String: [Duration]] = [
        "regen_cycle_duration_seconds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120].map { .milliseconds(Int($0 * 1000)) },
        "regen_template_render_duration_seconds": [100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000]
            .map { .microseconds($0) },
    ]
    static let valueBuckets: [String: [Double]] = [
        "regen_cycle_events": [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000]
    ]
}

/// swift-metrics onto a Prometheus registry, with the help text and buckets of
/// ``MetricCatalogue``. swift-prometheus's own factory emits no `# HELP`.
public struct PrometheusBackend: MetricsFactory {
    /// What `/metrics` renders.
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricCatalogue.help[label] ?? "")
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: descriptor(label), labels: dimensions) }
        return registry.makeValueHistogram(
            descriptor: descriptor(label), labels: dimensions,
            buckets: MetricCatalogue.valueBuckets[label] ?? [1, 10, 100, 1000, 10_000])
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            descriptor: descriptor(label), labels: dimensions,
            buckets: MetricCatalogue.durationBuckets[label] ?? [0.001, 0.01, 0.1, 1, 10].map { .milliseconds(Int($0 * 1000)) })
    }

    public func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    public func destroyRecorder(_ handler: any RecorderHandler) {
        switch handler {
        case let gauge as Prometheus.Gauge: registry.unregisterGauge(gauge)
        case let histogram as ValueHistogram: registry.unregisterValueHistogram(histogram)
        default: break
        }
    }

    public func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
