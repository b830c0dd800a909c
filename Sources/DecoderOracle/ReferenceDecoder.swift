import Foundation
import Orchestration

/// The change-event decoder regen used before `ChangeEventDecoder`: Foundation's
/// `JSONDecoder` and `ISO8601FormatStyle`, kept unchanged as the oracle of the differential
/// fuzzer. Not used by the service.
public enum ReferenceDecoder {
    /// Decodes and validates `bytes` the way regen did with Foundation.
    public static func decode(_ bytes: [UInt8]?, maxBytes: Int = ChangeEvent.defaultMaxBytes) throws(InvalidChangeEvent) -> ChangeEvent {
        guard let bytes, !bytes.isEmpty else { throw InvalidChangeEvent(field: nil, reason: "empty record (no value)") }
        guard bytes.count <= maxBytes else {
            throw InvalidChangeEvent(field: nil, reason: "record of \(bytes.count) bytes exceeds the limit of \(maxBytes)")
        }
        let event: ChangeEvent
        do {
            event = try JSONDecoder().decode(FoundationChangeEvent.self, from: Data(bytes)).event
        } catch let error as DecodingError {
            var problem = DecodingProblem(error)
            if problem.field == nil, case .dataCorrupted = error, let syntax = JSONSyntaxProblem.find(in: bytes) {
                problem.reason = "not valid JSON: \(syntax)"
            }
            throw InvalidChangeEvent(field: problem.field, reason: problem.reason)
        } catch {
            throw InvalidChangeEvent(field: nil, reason: "\(error)")
        }
        try event.validate()
        return event
    }

    /// Today's `ISO8601FormatStyle` parse, with or without fractional seconds.
    public static func parseTimestamp(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)) ?? (try? Date.ISO8601FormatStyle().parse(text))
    }
}

/// `ChangeEvent`'s former `init(from:)`, field by field.
private struct FoundationChangeEvent: Decodable {
    let event: ChangeEvent

    enum CodingKeys: String, CodingKey {
        case id, timestamp, subject, predicate, object, properties, source, metadata
        case changeType = "change_type"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let id = try c.decode(String.self, forKey: .id)
        let rawType = try c.decode(String.self, forKey: .changeType)
        guard let changeType = ChangeType(rawValue: rawType) else {
            let allowed = ChangeType.allCases.map(\.rawValue).joined(separator: "|")
            throw DecodingError.dataCorruptedError(
                forKey: .changeType, in: c, debugDescription: "unknown change_type '\(rawType)'; allowed: \(allowed)")
        }
        let text = try c.decode(String.self, forKey: .timestamp)
        guard let timestamp = ReferenceDecoder.parseTimestamp(text) else {
            throw DecodingError.dataCorruptedError(forKey: .timestamp, in: c, debugDescription: "'\(text)' is not an RFC 3339 date-time")
        }
        event = ChangeEvent(
            id: id, changeType: changeType, timestamp: timestamp, subject: try c.decode(String.self, forKey: .subject),
            predicate: try c.decodeIfPresent(String.self, forKey: .predicate), object: try c.decodeIfPresent(String.self, forKey: .object),
            properties: try c.decodeIfPresent([String: JSONValue].self, forKey: .properties) ?? [:],
            source: try c.decodeIfPresent(String.self, forKey: .source) ?? "unknown",
            metadata: try c.decodeIfPresent([String: String].self, forKey: .metadata) ?? [:])
    }
}
