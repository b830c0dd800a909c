import Foundation

/// Why a record is not a valid change event; the message names the field at fault.
public struct InvalidChangeEvent: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field at fault (a dotted path such as `properties.size`), or nil for the whole record.
    public let field: String?
    /// What is wrong, in words fit for a dead-letter header.
    public let reason: String

    /// Creates an invalid-event error.
    public init(field: String?, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { field.map { "field '\($0)': \(reason)" } ?? reason }
}

extension ChangeEvent {
    /// The largest record accepted; larger ones are rejected before parsing.
    public static let defaultMaxBytes = 1 << 20

    /// Decodes and validates a change event from its JSON bytes, in one pass over them
    /// (`ChangeEventDecoder`; the README's "Wire format" says what is accepted).
    /// - Throws: `InvalidChangeEvent` naming the field: missing, of the wrong type,
    ///   an unknown `change_type`, a bad timestamp, an empty id or subject, an edge change
    ///   without predicate/object; or, for the record as a whole, not JSON (saying where
    ///   and why), empty, or larger than `maxBytes`.
    public static func decode(_ bytes: [UInt8]?, maxBytes: Int = defaultMaxBytes) throws(InvalidChangeEvent) -> ChangeEvent {
        guard let bytes, !bytes.isEmpty else { throw InvalidChangeEvent(field: nil, reason: "empty record (no value)") }
        guard bytes.count <= maxBytes else {
            throw InvalidChangeEvent(field: nil, reason: "record of \(bytes.count) bytes exceeds the limit of \(maxBytes)")
        }
        let event = try ChangeEventDecoder.decode(bytes)
        try event.validate()
        return event
    }

    /// Checks what the type system cannot.
    /// - Throws: `InvalidChangeEvent` naming the field.
    public func validate() throws(InvalidChangeEvent) {
        if id.isEmpty { throw InvalidChangeEvent(field: "id", reason: "must not be empty") }
        if subject.isEmpty { throw InvalidChangeEvent(field: "subject", reason: "must not be empty") }
        if changeType.isEdgeChange {
            if predicate?.isEmpty ?? true {
                throw InvalidChangeEvent(field: "predicate", reason: "required for \(changeType.rawValue)")
            }
            if object?.isEmpty ?? true {
                throw InvalidChangeEvent(field: "object", reason: "required for \(changeType.rawValue)")
            }
        }
    }
}

/// A decoding failure as the field at fault (a dotted path, `[n]` for list items) and
/// what is wrong with it, in words for an error message.
public struct DecodingProblem: Sendable, Hashable, CustomStringConvertible {
    /// The field at fault, or nil when the input as a whole is unreadable.
    public var field: String?
    /// What is wrong.
    public var reason: String

    /// Describes `error`.
    public init(_ error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            (field, reason) = (Self.path(context.codingPath + [key]), "missing")
        case .typeMismatch(let type, let context):
            (field, reason) = (Self.path(context.codingPath), "expected \(Self.typeName(type))")
        case .valueNotFound(let type, let context):
            (field, reason) = (Self.path(context.codingPath), "null where \(Self.typeName(type)) is required")
        case .dataCorrupted(let context):
            field = Self.path(context.codingPath)
            reason = field == nil ? "not valid JSON: \(Self.underlying(context))" : context.debugDescription
        @unknown default:
            (field, reason) = (nil, "\(error)")
        }
    }

    public var description: String { field.map { "\($0): \(reason)" } ?? reason }

    /// The dotted path of `keys`, or nil for the top level (the record as a whole).
    private static func path(_ keys: [any CodingKey]) -> String? {
        guard !keys.isEmpty else { return nil }
        return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }

    private static func typeName(_ type: Any.Type) -> String {
        let name = "\(type)"
        if type == String.self { return "a string" }
        if name.hasPrefix("Dictionary<") { return "an object" }
        if name.hasPrefix("Array<") { return "an array" }
        return name
    }

    private static func underlying(_ context: DecodingError.Context) -> String {
        (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String ?? context.debugDescription
    }
}
