/// A configuration value outside what is allowed.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field, as a dotted path (`retry.maxAttempts`).
    public var field: String
    /// The value given.
    public var value: String
    /// What is allowed.
    public var allowed: String

    /// Creates a configuration error.
    public init(field: String, value: String, allowed: String) {
        self.field = field
        self.value = value
        self.allowed = allowed
    }

    public var description: String { "\(field) = \(value) is not allowed: must be \(allowed)" }
}

/// Collects every violation instead of stopping at the first.
public struct ConfigurationChecker: Sendable {
    /// The violations so far.
    public private(set) var errors: [ConfigurationError] = []

    /// Starts with no violations.
    public init() {}

    /// Records a violation of `field` (with `value`, and what is `allowed`) unless `condition` holds.
    public mutating func require(_ condition: Bool, _ field: String, _ value: some Any, _ allowed: String) {
        if !condition { errors.append(ConfigurationError(field: field, value: "\(value)", allowed: allowed)) }
    }
}

/// Every violation found by `validate()`.
public struct ConfigurationErrors: Error, Sendable, CustomStringConvertible {
    /// The violations, in field order.
    public var errors: [ConfigurationError]

    /// Wraps the violations found.
    public init(errors: [ConfigurationError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

extension KeyedDecodingContainer {
    /// The value for `key`, or `fallback` when the key is absent: config files name only what they change.
    /// - Throws: `DecodingError` when the key is present with a value of the wrong type.
    public func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
}
