/// A record of a cycle after decoding: a change event to process, or invalid input
/// headed for the dead-letter sink. A class: dispatch, completion and progress pass
/// records around, and a copy of a reference is one retain where a copy of the record and
/// its event is one for each of their strings, arrays and maps.
final class PlannedRecord: Sendable {
    /// Where the record is in its cycle.
    let index: Int
    let record: CycleRecord
    /// The event, or why the record is not one.
    let content: Result<ChangeEvent, InvalidChangeEvent>

    init(index: Int, record: CycleRecord, content: Result<ChangeEvent, InvalidChangeEvent>) {
        self.index = index
        self.record = record
        self.content = content
    }
}

/// The records of one key, in the order they were read: they run one after another.
struct KeyRun: Sendable {
    let key: String
    var records: [PlannedRecord]
    /// The highest priority among the records.
    var priority: Int
    /// Where the key first appeared in the cycle, to break priority ties.
    let firstIndex: Int
}

/// A cycle decoded and split into key runs, highest priority first, then first offset.
struct CyclePlan: Sendable {
    let runs: [KeyRun]
    /// The cycle's records' positions, in cycle order.
    let positions: [SourcePosition]
    var recordCount: Int { positions.count }

    init(_ cycle: Cycle, maxEventBytes: Int) {
        var runs: [KeyRun] = []
        var indexByKey: [String: Int] = [:]
        var positions: [SourcePosition] = []
        positions.reserveCapacity(cycle.records.count)
        for (index, record) in cycle.records.enumerated() {
            let planned = PlannedRecord(index: index, record: record, content: Self.decode(record, maxEventBytes: maxEventBytes))
            positions.append(record.position)
            let key = Self.orderingKey(planned)
            if let existing = indexByKey[key] {
                runs[existing].records.append(planned)
                runs[existing].priority = max(runs[existing].priority, record.priority)
            } else {
                indexByKey[key] = runs.count
                runs.append(KeyRun(key: key, records: [planned], priority: record.priority, firstIndex: index))
            }
        }
        runs.sort { ($0.priority, -$0.firstIndex) > ($1.priority, -$1.firstIndex) }
        self.runs = runs
        self.positions = positions
    }

    /// The record's event, decoded ahead when it was under the same limit.
    private static func decode(_ record: CycleRecord, maxEventBytes: Int) -> Result<ChangeEvent, InvalidChangeEvent> {
        if let decoded = record.decoded, decoded.maxBytes == maxEventBytes { return decoded.result }
        return CycleRecord.decode(record.value, maxBytes: maxEventBytes)
    }

    /// The record key; without one, the subject; for keyless invalid input, the position
    /// (such a record orders with nothing).
    private static func orderingKey(_ planned: PlannedRecord) -> String {
        if let key = planned.record.key { return String(decoding: key, as: UTF8.self) }
        switch planned.content {
        case .success(let event): return event.subject
        case .failure: return "\u{0}\(planned.record.position)"
        }
    }
}
