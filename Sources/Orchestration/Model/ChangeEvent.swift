import Foundation

/// What changed in the knowledge graph or its templates.
public enum ChangeType: String, Sendable, Hashable, Codable, CaseIterable {
    case nodeAdded = "node_added"
    case nodeRemoved = "node_removed"
    case nodeUpdated = "node_updated"
    case edgeAdded = "edge_added"
    case edgeRemoved = "edge_removed"
    case edgeUpdated = "edge_updated"
    case schemaChanged = "schema_changed"
    case templateChanged = "template_changed"

    /// Edge changes name a predicate and an object besides their subject.
    public var isEdgeChange: Bool { self == .edgeAdded || self == .edgeRemoved || self == .edgeUpdated }
}

/// A change event as it arrives on the input topic (JSON, snake_case keys).
public struct ChangeEvent: Sendable, Hashable, Codable {
    /// Unique id of the change, used for deduplication and tracing.
    public var id: String
    /// What changed.
    public var changeType: ChangeType
    /// When the change happened upstream.
    public var timestamp: Date
    /// The node (or edge source) that changed; also the Kafka key.
    public var subject: String
    /// The edge predicate, for edge changes.
    public var predicate: String?
    /// The edge target, for edge changes.
    public var object: String?
    /// The changed node's properties.
    public var properties: [String: JSONValue]
    /// The upstream producer.
    public var source: String
    /// Free-form string metadata.
    public var metadata: [String: String]

    /// Creates an event; every argument after the subject has a default.
    public init(
        id: String, changeType: ChangeType, timestamp: Date = Date(), subject: String, predicate: String? = nil,
        object: String? = nil, properties: [String: JSONValue] = [:], source: String = "unknown",
        metadata: [String: String] = [:]
    ) {
        self.id = id
        self.changeType = changeType
        self.timestamp = timestamp
        self.subject = subject
        self.predicate = predicate
        self.object = object
        self.properties = properties
        self.source = source
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case id, timestamp, subject, predicate, object, properties, source, metadata
        case changeType = "change_type"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        let rawType = try c.decode(String.self, forKey: .changeType)
        guard let changeType = ChangeType(rawValue: rawType) else {
            let allowed = ChangeType.allCases.map(\.rawValue).joined(separator: "|")
            throw DecodingError.dataCorruptedError(
                forKey: .changeType, in: c, debugDescription: "unknown change_type '\(rawType)'; allowed: \(allowed)")
        }
        self.changeType = changeType
        timestamp = try Self.decodeTimestamp(c)
        subject = try c.decode(String.self, forKey: .subject)
        predicate = try c.decodeIfPresent(String.self, forKey: .predicate)
        object = try c.decodeIfPresent(String.self, forKey: .object)
        properties = try c.decodeIfPresent([String: JSONValue].self, forKey: .properties) ?? [:]
        source = try c.decodeIfPresent(String.self, forKey: .source) ?? "unknown"
        metadata = try c.decodeIfPresent([String: String].self, forKey: .metadata) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(changeType, forKey: .changeType)
        try c.encode(RFC3339.format(timestamp), forKey: .timestamp)
        try c.encode(subject, forKey: .subject)
        try c.encodeIfPresent(predicate, forKey: .predicate)
        try c.encodeIfPresent(object, forKey: .object)
        try c.encode(properties, forKey: .properties)
        try c.encode(source, forKey: .source)
        try c.encode(metadata, forKey: .metadata)
    }

    private static func decodeTimestamp(_ c: KeyedDecodingContainer<CodingKeys>) throws -> Date {
        let text = try c.decode(String.self, forKey: .timestamp)
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: .timestamp, in: c, debugDescription: "'\(text)' is not an RFC 3339 date-time")
        }
        return date
    }
}

/// RFC 3339 timestamps, with or without fractional seconds.
public enum RFC3339 {
    /// Parses `2025-10-10T12:00:00Z` or `2025-10-10T12:00:00.123+02:00`.
    public static func parse(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
    }

    /// Formats with millisecond precision in UTC, rounded to the nearest millisecond
    /// (Foundation's own fractional seconds truncate, so `.061` could come back `.060`).
    public static func format(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        let seconds = (milliseconds / 1000).rounded(.down)
        let fraction = Int(milliseconds - seconds * 1000)
        let whole = Date(timeIntervalSince1970: seconds).formatted(Date.ISO8601FormatStyle())
        let digits = String(fraction)
        return whole.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}
