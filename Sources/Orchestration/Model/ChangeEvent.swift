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

/// RFC 3339 timestamps: `2025-10-10T12:00:00Z`, `2025-10-10T12:00:00.123+02:00`.
public enum RFC3339 {
    /// Why a text is not a timestamp regen takes.
    public struct Problem: Error, Sendable, Hashable {
        /// What is wrong, e.g. "day 31 does not exist in month 4 of 2025".
        public let reason: String
    }

    /// Parses an RFC 3339 date-time, or nil; see `parseStrictly` for what is accepted.
    public static func parse(_ text: String) -> Date? {
        try? parseStrictly(text).get()
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS`, optionally `.` and 1 to 9 digits of fractional
    /// seconds, then `Z` (or `z`) or an offset `+HH:MM`/`-HH:MM`. Years run from 0000 to
    /// 9999 in the proleptic Gregorian calendar; the day must exist in its month; hours
    /// and minutes must be in range, offsets at most 18:00 either way (Foundation's
    /// limit); a leap second (`:60`) is the first second of the next minute, as in
    /// Foundation. The arithmetic is Foundation's, so equal texts give equal dates.
    public static func parseStrictly(_ text: String) -> Result<Date, Problem> {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Result<Date, Problem> {
        func fail(_ reason: String) -> Result<Date, Problem> { .failure(Problem(reason: reason)) }
        let count = bytes.count
        func number(_ at: Int, _ digits: Int) -> Int? {
            guard at + digits <= count else { return nil }
            var value = 0
            for offset in at..<(at + digits) {
                let digit = bytes[offset] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                value = value * 10 + Int(digit)
            }
            return value
        }
        func separator(_ at: Int, _ expected: Unicode.Scalar) -> Bool { at < count && bytes[at] == UInt8(ascii: expected) }
        guard let year = number(0, 4), separator(4, "-"), let month = number(5, 2), separator(7, "-"), let day = number(8, 2),
            separator(10, "T"), let hour = number(11, 2), separator(13, ":"), let minute = number(14, 2), separator(16, ":"),
            let second = number(17, 2)
        else { return fail("expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset such as +02:00") }
        guard (1...12).contains(month) else { return fail("month \(month) is out of range (01-12)") }
        guard day >= 1 && day <= daysIn(month: month, year: year) else { return fail("day \(day) does not exist in month \(month) of \(year)") }
        guard hour < 24 else { return fail("hour \(hour) is out of range (00-23)") }
        guard minute < 60 else { return fail("minute \(minute) is out of range (00-59)") }
        guard second <= 60 else { return fail("second \(second) is out of range (00-60)") }
        var at = 19
        var nanoseconds = 0
        if separator(at, ".") {
            at += 1
            var digits = 0
            while at < count, bytes[at] &- UInt8(ascii: "0") < 10 {
                digits += 1
                guard digits <= 9 else { return fail("more than 9 digits of fractional seconds") }
                nanoseconds = nanoseconds * 10 + Int(bytes[at] &- UInt8(ascii: "0"))
                at += 1
            }
            guard digits > 0 else { return fail("expected digits after the decimal point") }
            for _ in digits..<9 { nanoseconds *= 10 }
        }
        var offset = 0
        if separator(at, "Z") || separator(at, "z") {
            at += 1
        } else if separator(at, "+") || separator(at, "-") {
            guard let hours = number(at + 1, 2), separator(at + 3, ":"), let minutes = number(at + 4, 2) else {
                return fail("expected an offset such as +02:00 or Z after the time")
            }
            guard minutes < 60, hours * 60 + minutes <= 18 * 60 else { return fail("offset out of range (at most 18:00 either way)") }
            offset = (hours * 3600 + minutes * 60) * (separator(at, "-") ? -1 : 1)
            at += 6
        } else {
            return fail("expected Z or an offset such as +02:00 after the time")
        }
        guard at == count else { return fail("unexpected text after the offset") }
        // Foundation's Gregorian calendar: midnight of the day, then the time of day, then the offset.
        let midnight = Double(daysFromCivil(year: year, month: month, day: day) * 86_400 - 978_307_200)
        var secondsInDay = 0.0
        secondsInDay += Double(hour) * 3600.0
        secondsInDay += Double(minute) * 60.0
        secondsInDay += Double(second)
        secondsInDay += Double(nanoseconds) / Double(1_000_000_000)
        return .success(Date(timeIntervalSinceReferenceDate: (midnight + secondsInDay) - Double(offset)))
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to the date, in the proleptic Gregorian calendar.
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Formats with millisecond precision in UTC, rounded to the nearest millisecond
    /// (Foundation's own fractional seconds truncate, so `.061` could come back `.060`),
    /// in the proleptic Gregorian calendar `parse` reads.
    public static func format(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        guard milliseconds.magnitude < 1e17 else { return date.formatted(Date.ISO8601FormatStyle()) }
        let total = Int64(milliseconds)
        let (days, millisecondOfDay) = floorDivision(total, 86_400_000)
        let (year, month, day) = civil(fromDays: Int(days))
        var second = Int(millisecondOfDay / 1000)
        let millisecond = Int(millisecondOfDay % 1000)
        let hour = second / 3600
        second %= 3600
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value.magnitude)
            return (value < 0 ? "-" : "") + String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))T\(padded(hour, 2)):\(padded(second / 60, 2)):"
            + "\(padded(second % 60, 2)).\(padded(millisecond, 3))Z"
    }

    private static func floorDivision(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (the inverse of `daysFromCivil`).
    private static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
