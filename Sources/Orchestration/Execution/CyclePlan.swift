/// A record of a cycle after decoding: a change event to process, or invalid input
/// headed for the dead-letter sink.
enum PlannedRecord: Sendable {
    case valid(CycleRecord, ChangeEvent)
    case invalid(CycleRecord, InvalidChangeEvent)

    var record: CycleRecord {
        switch self {
        case .valid(let record, _), .invalid(let record, _): record
        }
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
    let recordCount: Int

    init(_ cycle: Cycle, maxEventBytes: Int) {
        var runs: [KeyRun] = []
        var indexByKey: [String: Int] = [:]
        for (index, record) in cycle.records.enumerated() {
            let planned = Self.decode(record, maxEventBytes: maxEventBytes)
            let key = Self.orderingKey(planned)
            if let existing = indexByKey[key] {
                runs[existing].records.append(planned)
                runs[existing].priority = max(runs[existing].priority, record.priority)
            } else {
                indexByKey[key] = runs.count
                runs.append(KeyRun(key: key, records: [planned], priority: record.priority, firstIndex: index))
            }
        }
        self.runs = runs.sorted { ($0.priority, -$0.firstIndex) > ($1.priority, -$1.firstIndex) }
        recordCount = cycle.records.count
    }

    private static func decode(_ record: CycleRecord, maxEventBytes: Int) -> PlannedRecord {
        do {
            return .valid(record, try ChangeEvent.decode(record.value, maxBytes: maxEventBytes))
        } catch {
            return .invalid(record, error)
        }
    }

    /// The record key; without one, the subject; for keyless invalid input, the position
    /// (such a record orders with nothing).
    private static func orderingKey(_ planned: PlannedRecord) -> String {
        if let key = planned.record.key { return String(decoding: key, as: UTF8.self) }
        switch planned {
        case .valid(_, let event): return event.subject
        case .invalid(let record, _): return "\u{0}\(record.position)"
        }
    }
}
