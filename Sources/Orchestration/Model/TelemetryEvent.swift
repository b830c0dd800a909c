import Foundation

/// The kinds of telemetry event (`event_type` on the wire).
public enum TelemetryEventType: String, Sendable, Hashable, Codable, CaseIterable {
    case regenerationStarted = "regeneration_started"
    case regenerationCompleted = "regeneration_completed"
    case regenerationFailed = "regeneration_failed"
    case deploymentStarted = "deployment_started"
    case deploymentCompleted = "deployment_completed"
    case deploymentFailed = "deployment_failed"
    case validationPassed = "validation_passed"
    case validationFailed = "validation_failed"
    case performanceMetric = "performance_metric"
    case resourceUsage = "resource_usage"
    case error
    case performanceWarning = "performance_warning"
    case performanceAlert = "performance_alert"

    /// Warnings and alerts go to the alerts topic; everything goes to the telemetry topic.
    public var isAlert: Bool { self == .performanceWarning || self == .performanceAlert }
}

/// One telemetry record (`regen.telemetry/v1`).
public struct TelemetryEvent: Sendable, Hashable, Codable {
    /// The schema every event carries.
    public static let schema = "regen.telemetry/v1"

    /// Unique id.
    public var id: UUID
    /// What happened.
    public var eventType: TelemetryEventType
    /// When it happened (wall clock).
    public var timestamp: Date
    /// Which part of regen emitted it (`orchestrator`, `health`, `adaptive`, ...).
    public var component: String
    /// Which regen instance emitted it.
    public var instance: String
    /// The details.
    public var data: [String: JSONValue]
    /// Labels for filtering (severity, reason, ...).
    public var tags: [String: String]
    /// Always `regen.telemetry/v1`.
    public var schema: String

    /// Creates an event with a new id.
    public init(
        eventType: TelemetryEventType, timestamp: Date, component: String, instance: String,
        data: [String: JSONValue] = [:], tags: [String: String] = [:], id: UUID = UUID()
    ) {
        self.id = id
        self.eventType = eventType
        self.timestamp = timestamp
        self.component = component
        self.instance = instance
        self.data = data
        self.tags = tags
        self.schema = Self.schema
    }

    enum CodingKeys: String, CodingKey {
        case id, timestamp, component, instance, data, tags, schema
        case eventType = "event_type"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(UUID.self, forKey: .id)
        eventType = try c.decode(TelemetryEventType.self, forKey: .eventType)
        let text = try c.decode(String.self, forKey: .timestamp)
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: .timestamp, in: c, debugDescription: "not RFC 3339: \(text)")
        }
        timestamp = date
        component = try c.decode(String.self, forKey: .component)
        instance = try c.decode(String.self, forKey: .instance)
        data = try c.decode([String: JSONValue].self, forKey: .data)
        tags = try c.decode([String: String].self, forKey: .tags)
        schema = try c.decode(String.self, forKey: .schema)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id.uuidString.lowercased(), forKey: .id)
        try c.encode(eventType, forKey: .eventType)
        try c.encode(RFC3339.format(timestamp), forKey: .timestamp)
        try c.encode(component, forKey: .component)
        try c.encode(instance, forKey: .instance)
        try c.encode(data, forKey: .data)
        try c.encode(tags, forKey: .tags)
        try c.encode(schema, forKey: .schema)
    }
}
