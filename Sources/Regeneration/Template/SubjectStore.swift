import Foundation
import Mustache
import Orchestration

/// The latest known state of every subject, built from change events and persisted
/// next to the output, so a restart renders from the same state.
///
/// Each subject remembers the offset of the last event applied to it from each input
/// partition (and keeps remembering it after it is removed), so an event read again
/// after a crash (its cycle was applied but not committed) is recognised and applying
/// it twice changes nothing, even when the subject's later events came from another
/// partition.
struct SubjectStore: Sendable, Codable {
    struct Edge: Sendable, Codable, Hashable {
        var predicate: String
        var object: String
    }

    struct Subject: Sendable, Codable {
        var properties: [String: JSONValue] = [:]
        var edges: [Edge] = []
        var lastChange: ChangeType = .nodeAdded
        var updatedAt: Date = .distantPast
        var source = ""
        /// The offset of the last event applied, per input partition (`topic/partition`).
        var applied: [String: Int64] = [:]

        init() {}

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            properties = try c.decodeIfPresent([String: JSONValue].self, forKey: .properties) ?? [:]
            edges = try c.decodeIfPresent([Edge].self, forKey: .edges) ?? []
            lastChange = try c.decodeIfPresent(ChangeType.self, forKey: .lastChange) ?? .nodeAdded
            updatedAt = try c.decodeIfPresent(Date.self, forKey: .updatedAt) ?? .distantPast
            source = try c.decodeIfPresent(String.self, forKey: .source) ?? ""
            applied = try c.decodeIfPresent([String: Int64].self, forKey: .applied) ?? [:]  // absent in a state written before positions were kept
        }
    }

    private(set) var subjects: [String: Subject] = [:]
    /// Removed subjects: the offsets applied to each, per input partition, up to its removal.
    private(set) var removed: [String: [String: Int64]] = [:]

    init(subjects: [String: Subject] = [:], removed: [String: [String: Int64]] = [:]) {
        self.subjects = subjects
        self.removed = removed
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        subjects = try c.decodeIfPresent([String: Subject].self, forKey: .subjects) ?? [:]
        removed = try c.decodeIfPresent([String: [String: Int64]].self, forKey: .removed) ?? [:]
    }

    /// Whether `completed` changed its subject's state already (read again after a crash).
    func hasApplied(_ completed: CompletedEvent) -> Bool {
        guard Self.changesSubject(completed.event) else { return false }
        let subject = completed.event.subject
        let applied = subjects[subject]?.applied ?? removed[subject] ?? [:]
        guard let last = applied[Self.stream(of: completed.position)] else { return false }
        return completed.position.offset <= last
    }

    /// Applies one event (in offset order per partition) unless it was applied already.
    mutating func apply(_ completed: CompletedEvent) {
        let event = completed.event
        guard Self.changesSubject(event), !hasApplied(completed) else { return }
        var applied = subjects[event.subject]?.applied ?? removed[event.subject] ?? [:]
        applied[Self.stream(of: completed.position)] = completed.position.offset
        switch event.changeType {
        case .nodeRemoved:
            subjects[event.subject] = nil
            removed[event.subject] = applied
            return
        case .nodeAdded, .nodeUpdated:
            var subject = subjects[event.subject] ?? Subject()
            if event.changeType == .nodeAdded { subject.properties = [:] }
            subject.properties.merge(event.properties) { _, new in new }
            record(event, applied, into: &subject)
        case .edgeAdded, .edgeUpdated, .edgeRemoved:
            var subject = subjects[event.subject] ?? Subject()
            let edge = Edge(predicate: event.predicate ?? "", object: event.object ?? "")
            subject.edges.removeAll { $0 == edge }
            if event.changeType != .edgeRemoved { subject.edges.append(edge) }
            record(event, applied, into: &subject)
        case .schemaChanged, .templateChanged:
            break
        }
    }

    private mutating func record(_ event: ChangeEvent, _ applied: [String: Int64], into subject: inout Subject) {
        subject.lastChange = event.changeType
        subject.updatedAt = event.timestamp
        subject.source = event.source
        subject.applied = applied
        subjects[event.subject] = subject
        removed[event.subject] = nil
    }

    /// Whether the event changes its subject's state (schema and template changes name no
    /// subject: they affect what is rendered).
    static func changesSubject(_ event: ChangeEvent) -> Bool {
        event.changeType != .schemaChanged && event.changeType != .templateChanged
    }

    private static func stream(of position: SourcePosition) -> String {
        "\(position.partition.topic)/\(position.partition.partition)"
    }

    /// Loads the `state.json` at `path` (written by regen before the SQLite store), or an
    /// empty store when there is none.
    /// - Throws: when the file exists but cannot be read.
    static func load(from path: String) throws -> SubjectStore {
        guard FileManager.default.fileExists(atPath: path) else { return SubjectStore() }
        return try JSONDecoder().decode(SubjectStore.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// The store as JSON, object keys sorted: the same state is the same text.
    func exported() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// The render context of one subject. `file_name` is its file name in per-subject
    /// outputs, `url_name` that name as a URL path segment, `properties_json` the
    /// properties as one JSON object (for `{{{properties_json}}}` in JSON templates).
    func context(of name: String) -> [String: Any] {
        let names: [String: Any] = [
            "subject": name, "file_name": SubjectFileName.make(for: name), "url_name": SubjectFileName.urlSegment(for: name),
        ]
        guard let subject = subjects[name] else { return names.merging(["exists": false, "properties_json": JSONText(.object([:]))]) { $1 } }
        return names.merging([
            "exists": true, "properties": subject.properties.mapValues(\.mustacheValue),
            "properties_json": JSONText(.object(subject.properties)),
            "edges": subject.edges.map { ["predicate": $0.predicate, "object": $0.object] },
            "last_change": subject.lastChange.rawValue, "updated_at": RFC3339.format(subject.updatedAt), "source": subject.source,
        ]) { $1 }
    }
}

extension JSONValue {
    /// The value as Foundation types, for Mustache.
    var mustacheValue: Any {
        switch self {
        case .null: NSNull()
        case .bool(let value): value
        case .number(let value): value.rounded() == value && abs(value) < 1e15 ? Int(value) as Any : value as Any
        case .string(let value): value
        case .array(let values): values.map(\.mustacheValue)
        case .object(let members): members.mapValues(\.mustacheValue)
        }
    }

    /// The value as JSON text, object keys sorted.
    var jsonText: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .number(let value): value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
        case .string(let value): "\"" + JSONStringContent().escapeText(value) + "\""
        case .array(let values): "[" + values.map(\.jsonText).joined(separator: ",") + "]"
        case .object(let members):
            "{" + members.sorted { $0.key < $1.key }.map { "\"" + JSONStringContent().escapeText($0.key) + "\":" + $0.value.jsonText }
                .joined(separator: ",") + "}"
        }
    }
}

/// A value rendered as JSON text only when a template inserts it, so contexts that never
/// use `properties_json` do not pay for serializing every subject's properties.
struct JSONText: MustacheCustomRenderable {
    let value: JSONValue
    init(_ value: JSONValue) { self.value = value }
    var renderText: String { value.jsonText }
    var isNull: Bool { false }
}
