import CoreMetrics
import Orchestration
import RdKafka
import Synchronization

/// The gauges whose value is read from the parts when Prometheus scrapes, rather than
/// counted as things happen: one lag series per assigned partition (series of partitions
/// no longer assigned are removed), buffers, work in flight, the breaker, memory.
final class SampledGauges: Sendable {
    private let factory: any MetricsFactory
    private let inFlight: Gauge
    private let concurrency: Gauge
    private let breaker: Gauge
    private let cycles: Gauge
    private let assigned: Gauge
    private let bufferedRecords: Gauge
    private let bufferedBytes: Gauge
    private let memory: Gauge
    private let lag = Mutex<[TopicPartition: Gauge]>([:])
    private let joinStates = Mutex<[String: Gauge]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
        func gauge(_ label: String) -> Gauge { Gauge(label: label, factory: factory) }
        inFlight = gauge("regen_events_in_flight")
        concurrency = gauge("regen_concurrency_limit")
        breaker = gauge("regen_breaker_state")
        cycles = gauge("regen_cycles_in_flight")
        assigned = gauge("regen_assigned_partitions")
        bufferedRecords = gauge("regen_buffered_records")
        bufferedBytes = gauge("regen_buffered_bytes")
        memory = gauge("process_resident_memory_bytes")
    }

    func sample(
        status: ConsumerEngine.Status, orchestrator: RegenerationOrchestrator, lag partitions: [TopicPartition: Int64],
        joinState: String?
    ) {
        inFlight.record(orchestrator.eventsInFlight)
        concurrency.record(orchestrator.stats().currentConcurrency)
        breaker.record(Self.value(of: orchestrator.breakerState))
        cycles.record(status.cyclesInFlight)
        assigned.record(status.ownedPartitions)
        bufferedRecords.record(status.bufferedRecords)
        bufferedBytes.record(status.bufferedBytes)
        if let resident = ProcessMemory.resident() { memory.record(resident) }
        record(joinState: joinState)
        lag.withLock { gauges in
            for (partition, gauge) in gauges where partitions[partition] == nil {
                gauge.destroy()
                gauges[partition] = nil
            }
            for (partition, value) in partitions {
                let gauge = gauges[partition] ?? Gauge(
                    label: "regen_consumer_lag",
                    dimensions: [("topic", partition.topic), ("partition", String(partition.partition))], factory: factory)
                gauges[partition] = gauge
                gauge.record(value)
            }
        }
    }

    /// `regen_group_join_state{state=…}`: 1 for the state librdkafka last reported, 0 for the
    /// others seen before (the usual shape of an enumeration in Prometheus).
    private func record(joinState: String?) {
        guard let joinState, !joinState.isEmpty else { return }
        joinStates.withLock { gauges in
            if gauges[joinState] == nil {
                gauges[joinState] = Gauge(label: "regen_group_join_state", dimensions: [("state", joinState)], factory: factory)
            }
            for (state, gauge) in gauges { gauge.record(state == joinState ? 1 : 0) }
        }
    }

    static func value(of state: CircuitBreaker.State) -> Int {
        switch state {
        case .closed: 0
        case .halfOpen: 1
        case .open: 2
        }
    }
}
