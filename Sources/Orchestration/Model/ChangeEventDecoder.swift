import Foundation

/// Decodes a change event from its UTF-8 bytes in one pass: no intermediate `Data`, `Any`
/// or tree for the event's own fields, each string made once, timestamps parsed by hand.
///
/// It accepts what the Foundation-based reference decoder accepts and, when it refuses,
/// names the same field, except where that decoder follows Foundation by accident; there
/// it is deliberately stricter (README, "Wire format"): the input must be RFC 8259 JSON in
/// UTF-8 (a leading UTF-8 byte order mark is skipped), no object may repeat a key, and the
/// timestamp must be RFC 3339. The differential fuzzer (`make fuzz-diff`) holds it to that.
struct ChangeEventDecoder: ~Copyable {
    /// How deep arrays and objects may nest, the record's own object included (Foundation's limit).
    static let maxDepth = 512

    private let base: UnsafePointer<UInt8>
    private let end: Int
    private var index = 0
    private var depth = 0
    /// Unescaped bytes of the string being read, reused.
    private var scratch: [UInt8] = []
    /// The first value in `properties` or `metadata` that cannot be used, with the path to
    /// it from the field, leaf first; only the first in document order is kept.
    private var valueProblem: (reason: String, reversedPath: [PathComponent])?
    /// The depth of the container that still has to add its part of `valueProblem`'s path.
    private var problemNeedsComponentAt = 0

    private enum PathComponent {
        case key(String)
        case index(Int)
    }

    private init(_ buffer: UnsafeBufferPointer<UInt8>) {
        base = buffer.baseAddress!
        end = buffer.count
    }

    /// Decodes `bytes`, which are not empty.
    static func decode(_ bytes: [UInt8]) throws(InvalidChangeEvent) -> ChangeEvent {
        let result: Result<ChangeEvent, InvalidChangeEvent> = bytes.withUnsafeBufferPointer { buffer in
            var decoder = ChangeEventDecoder(buffer)
            do throws(Failure) {
                return .success(try decoder.decodeRecord())
            } catch {
                return .failure(decoder.explain(error))
            }
        }
        return try result.get()
    }

    // MARK: Errors

    private enum Failure: Error {
        /// The bytes are not JSON (or not the JSON regen takes); the record as a whole is refused.
        case syntax(Syntax)
        /// The JSON is fine but a field is missing, of the wrong type or not a valid value.
        case field(String?, String)
    }

    private enum Syntax {
        case unexpected(at: Int)
        case endOfInput(insideString: Bool)
        case controlCharacter(UInt8, at: Int)
        /// Not valid UTF-8; `explain` names the first such byte of the record.
        case invalidUTF8
        case badEscape(at: Int)
        case loneSurrogate(UInt16, at: Int)
        case badNumber(at: Int)
        case tooDeep(at: Int)
        case duplicateKey(String, at: Int)
        case trailingData(at: Int)
        case onlyWhitespace
    }

    private func explain(_ failure: Failure) -> InvalidChangeEvent {
        let syntax: Syntax
        switch failure {
        case .field(let field, let reason): return InvalidChangeEvent(field: field, reason: reason)
        case .syntax(let problem): syntax = problem
        }
        let detail: String
        if case .unexpected(let at) = syntax, at < 4, base[at] == 0 || (at == 0 && (base[at] == 0xFE || base[at] == 0xFF)) {
            return InvalidChangeEvent(
                field: nil, reason: "not valid JSON: the record looks like UTF-16 or UTF-32 text at byte \(at); change events must be UTF-8")
        }
        // As before: bytes that are not UTF-8 anywhere in the record are named first.
        if let invalid = JSONSyntaxProblem.firstInvalidUTF8(in: UnsafeBufferPointer(start: base, count: end)) {
            return InvalidChangeEvent(field: nil, reason: "not valid JSON: invalid UTF-8 at byte \(invalid)")
        }
        switch syntax {
        case .unexpected(let at):
            let byte = base[at]
            if byte >= 0x20 && byte < 0x7F {
                detail = "unexpected '\(Character(Unicode.Scalar(byte)))' at byte \(at)"
            } else {
                detail = "unexpected byte 0x\(JSONSyntaxProblem.hex(byte)) at byte \(at)"
            }
        case .endOfInput(let insideString):
            detail = insideString
                ? "ends inside a string (truncated?)"
                : "ends with \(depth) unclosed bracket\(depth == 1 ? "" : "s") (truncated?)"
        case .controlCharacter(let byte, let at):
            detail = "unescaped control character 0x\(JSONSyntaxProblem.hex(byte)) in a string at byte \(at)"
        case .invalidUTF8:
            detail = "invalid UTF-8"  // not reached: the check above names the byte
        case .badEscape(let at):
            detail = "invalid escape sequence in a string at byte \(at)"
        case .loneSurrogate(let unit, let at):
            detail = "escaped lone surrogate \\u\(String(unit, radix: 16, uppercase: true)) at byte \(at), which is not a character"
        case .badNumber(let at):
            detail = "malformed number at byte \(at)"
        case .tooDeep(let at):
            detail = "nested more than \(Self.maxDepth) levels deep at byte \(at)"
        case .duplicateKey(let key, let at):
            detail = "duplicate key \"\(key)\" at byte \(at)"
        case .trailingData(let at):
            detail = "unexpected data after the end of the value at byte \(at)"
        case .onlyWhitespace:
            detail = "only whitespace"
        }
        return InvalidChangeEvent(field: nil, reason: "not valid JSON: \(detail)")
    }

    // MARK: The record

    /// The event's fields in the order the reference decoder checks them: when several
    /// are wrong, the first in this order is named.
    private enum Field: Int, CaseIterable {
        case id, changeType, timestamp, subject, predicate, object, properties, source, metadata

        var name: String {
            switch self {
            case .id: "id"
            case .changeType: "change_type"
            case .timestamp: "timestamp"
            case .subject: "subject"
            case .predicate: "predicate"
            case .object: "object"
            case .properties: "properties"
            case .source: "source"
            case .metadata: "metadata"
            }
        }

        /// The field named by the `count` bytes at `key`, if any.
        static func named(_ key: UnsafePointer<UInt8>, count: Int) -> Field? {
            func matches(_ name: StaticString) -> Bool {
                name.utf8CodeUnitCount == count && memcmp(key, name.utf8Start, count) == 0
            }
            switch count {
            case 2: return matches("id") ? .id : nil
            case 6:
                if matches("source") { return .source }
                return matches("object") ? .object : nil
            case 7: return matches("subject") ? .subject : nil
            case 8: return matches("metadata") ? .metadata : nil
            case 9:
                if matches("timestamp") { return .timestamp }
                return matches("predicate") ? .predicate : nil
            case 10: return matches("properties") ? .properties : nil
            case 11: return matches("change_type") ? .changeType : nil
            default: return nil
            }
        }
    }

    private mutating func decodeRecord() throws(Failure) -> ChangeEvent {
        if end >= 3, base[0] == 0xEF, base[1] == 0xBB, base[2] == 0xBF { index = 3 }
        skipWhitespace()
        guard index < end else { throw .syntax(.onlyWhitespace) }
        guard base[index] == UInt8(ascii: "{") else {
            let isNull = base[index] == UInt8(ascii: "n")
            try skipValue()
            try expectEnd()
            throw .field(nil, isNull ? "null where an object is required" : "expected an object")
        }
        return try decodeEvent()
    }

    private mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        if index < end { throw .syntax(.trailingData(at: index)) }
    }

    /// A string field's value; a value of another type is a problem of the field, and so
    /// is null when the field is required (an optional field's null means absent).
    private mutating func readStringField(_ field: Field, required: Bool, _ problems: inout [Int: Failure]) throws(Failure) -> String? {
        let first = try peek()
        if first == UInt8(ascii: "\"") { return try readString() }
        try skipNonString(field, required: required, first: first, &problems)
        return nil
    }

    private mutating func skipNonString(_ field: Field, required: Bool, first: UInt8, _ problems: inout [Int: Failure]) throws(Failure) {
        try skipValue()
        if first == UInt8(ascii: "n") {
            if required { problems[field.rawValue] = .field(field.name, "null where a string is required") }
        } else {
            problems[field.rawValue] = .field(field.name, "expected a string")
        }
    }

    /// The timestamp's text, or where its bytes are when it needs no unescaping (it is
    /// then parsed in place, and made a string only to say what is wrong with it).
    private enum TimestampText {
        case bytes(Range<Int>)
        case string(String)
    }

    private mutating func readTimestamp(_ problems: inout [Int: Failure]) throws(Failure) -> TimestampText? {
        let first = try peek()
        guard first == UInt8(ascii: "\"") else {
            try skipNonString(.timestamp, required: true, first: first, &problems)
            return nil
        }
        let (close, escaped, ascii) = try scanString()
        guard !escaped && ascii else { return .string(try readString()) }
        defer { index = close + 1 }
        return .bytes((index + 1)..<close)
    }

    private func parse(_ timestamp: TimestampText) throws(Failure) -> Date {
        let result: Result<Date, RFC3339.Problem>
        let text: String
        switch timestamp {
        case .bytes(let range):
            let bytes = UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
            result = RFC3339.parse(bytes: bytes)
            if case .success(let date) = result { return date }
            text = String(decoding: bytes, as: UTF8.self)
        case .string(let string):
            result = RFC3339.parseStrictly(string)
            text = string
        }
        switch result {
        case .success(let date): return date
        case .failure(let problem): throw .field(Field.timestamp.name, "'\(text)' is not an RFC 3339 date-time: \(problem.reason)")
        }
    }

    private mutating func decodeEvent() throws(Failure) -> ChangeEvent {
        var id: String?, changeType: String?, timestamp: TimestampText?, subject: String?
        var predicate: String?, object: String?, source: String?
        var properties: [String: JSONValue]?
        var metadata: [String: String]?
        var problems: [Int: Failure] = [:]
        var seen: UInt16 = 0
        var unknownKeys: Set<String> = []

        try enterContainer()
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                let keyAt = index
                guard try peek() == UInt8(ascii: "\"") else { throw .syntax(.unexpected(at: index)) }
                let (field, unknown) = try readKey()
                try expectColon()
                if let field {
                    if seen & (1 << field.rawValue) != 0 { throw .syntax(.duplicateKey(field.name, at: keyAt)) }
                    seen |= 1 << field.rawValue
                    switch field {
                    case .id: id = try readStringField(field, required: true, &problems)
                    case .changeType: changeType = try readStringField(field, required: true, &problems)
                    case .timestamp: timestamp = try readTimestamp(&problems)
                    case .subject: subject = try readStringField(field, required: true, &problems)
                    case .predicate: predicate = try readStringField(field, required: false, &problems)
                    case .object: object = try readStringField(field, required: false, &problems)
                    case .source: source = try readStringField(field, required: false, &problems)
                    case .properties:
                        properties = try readMap(field, &problems) { decoder throws(Failure) in try decoder.readValue() }
                    case .metadata:
                        metadata = try readMap(field, &problems) { decoder throws(Failure) in try decoder.readMetadataValue() }
                    }
                } else {
                    if !unknownKeys.insert(unknown).inserted { throw .syntax(.duplicateKey(unknown, at: keyAt)) }
                    try skipValue()
                }
                if try endOfMember(closing: UInt8(ascii: "}")) { break }
            }
        }
        depth -= 1
        try expectEnd()

        // Every byte is read and is JSON: now the fields, in the reference decoder's order.
        func check(_ field: Field, present: Bool) throws(Failure) {
            if let problem = problems[field.rawValue] { throw problem }
            if !present { throw .field(field.name, "missing") }
        }
        try check(.id, present: id != nil)
        try check(.changeType, present: changeType != nil)
        guard let type = ChangeType(rawValue: changeType!) else {
            let allowed = ChangeType.allCases.map(\.rawValue).joined(separator: "|")
            throw .field(Field.changeType.name, "unknown change_type '\(changeType!)'; allowed: \(allowed)")
        }
        try check(.timestamp, present: timestamp != nil)
        let date = try parse(timestamp!)
        try check(.subject, present: subject != nil)
        if let problem = problems.min(by: { $0.key < $1.key })?.value { throw problem }
        return ChangeEvent(
            id: id!, changeType: type, timestamp: date, subject: subject!, predicate: predicate, object: object,
            properties: properties ?? [:], source: source ?? "unknown", metadata: metadata ?? [:])
    }

    /// `properties` or `metadata`: an object whose values `readElement` reads, or null for
    /// none; anything else is a problem of the field.
    private mutating func readMap<Value>(
        _ field: Field, _ problems: inout [Int: Failure], _ readElement: (inout ChangeEventDecoder) throws(Failure) -> Value
    ) throws(Failure) -> [String: Value]? {
        let first = try peek()
        guard first == UInt8(ascii: "{") else {
            try skipValue()
            if first != UInt8(ascii: "n") { problems[field.rawValue] = .field(field.name, "expected an object") }
            return nil
        }
        valueProblem = nil
        let map = try readObject(readElement)
        if let problem = valueProblem {
            problems[field.rawValue] = .field(Self.path(field.name, problem.reversedPath, stopAtArray: field == .properties), problem.reason)
            valueProblem = nil
        }
        return map
    }

    /// The dotted path the reference decoder names: keys that read as integers appear as
    /// `[n]` (Swift's dictionary coding keys), and for `properties` a problem inside an
    /// array is named at the outermost array (`JSONValue` reports it there).
    private static func path(_ field: String, _ reversed: [PathComponent], stopAtArray: Bool) -> String {
        var path = field
        for component in reversed.reversed() {
            switch component {
            case .key(let key):
                if let number = Int(key) { path += "[\(number)]" } else { path += "." + key }
            case .index(let index):
                if stopAtArray { return path }
                path += "[\(index)]"
            }
        }
        return path
    }

    private mutating func readMetadataValue() throws(Failure) -> String {
        let first = try peek()
        if first == UInt8(ascii: "\"") { return try readString() }
        try skipValue()
        recordValueProblem(first == UInt8(ascii: "n") ? "null where a string is required" : "expected a string")
        return ""
    }

    /// Notes a problem with the value just read, inside the container at `depth`.
    private mutating func recordValueProblem(_ reason: String) {
        guard valueProblem == nil else { return }
        valueProblem = (reason, [])
        problemNeedsComponentAt = depth
    }

    /// Called by a container at `depth` after reading a member: names the member in the
    /// problem's path if the problem came from it.
    @inline(__always)
    private mutating func attributeProblem(_ component: @autoclosure () -> PathComponent) {
        guard valueProblem != nil, problemNeedsComponentAt == depth else { return }
        valueProblem!.reversedPath.append(component())
        problemNeedsComponentAt = depth - 1
    }

    // MARK: JSON values

    private mutating func readObject<Value>(_ readElement: (inout ChangeEventDecoder) throws(Failure) -> Value) throws(Failure) -> [String: Value] {
        try enterContainer()
        var members: [String: Value] = [:]
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return members
        }
        while true {
            let keyAt = index
            guard try peek() == UInt8(ascii: "\"") else { throw .syntax(.unexpected(at: index)) }
            let key = try readString()
            try expectColon()
            let value = try readElement(&self)
            if members.updateValue(value, forKey: key) != nil { throw .syntax(.duplicateKey(key, at: keyAt)) }
            attributeProblem(.key(key))
            if try endOfMember(closing: UInt8(ascii: "}")) { break }
        }
        depth -= 1
        return members
    }

    private mutating func readArray() throws(Failure) -> [JSONValue] {
        try enterContainer()
        var items: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return items
        }
        while true {
            items.append(try readValue())
            attributeProblem(.index(items.count - 1))
            if try endOfMember(closing: UInt8(ascii: "]")) { break }
        }
        depth -= 1
        return items
    }

    private mutating func readValue() throws(Failure) -> JSONValue {
        switch try peek() {
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "{"): return .object(try readObject { decoder throws(Failure) in try decoder.readValue() })
        case UInt8(ascii: "["): return .array(try readArray())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            if let number = try readNumber() { return .number(number) }
            recordValueProblem("a number beyond the range of a Double, or a string that is not valid Unicode")
            return .null
        }
    }

    /// Skips any value, checking it is JSON all the same.
    private mutating func skipValue() throws(Failure) {
        switch try peek() {
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "{"):
            try enterContainer()
            var keys: Set<String> = []
            skipWhitespace()
            if try peek() == UInt8(ascii: "}") {
                index += 1
            } else {
                while true {
                    let keyAt = index
                    guard try peek() == UInt8(ascii: "\"") else { throw .syntax(.unexpected(at: index)) }
                    let key = try readString()
                    if !keys.insert(key).inserted { throw .syntax(.duplicateKey(key, at: keyAt)) }
                    try expectColon()
                    try skipValue()
                    if try endOfMember(closing: UInt8(ascii: "}")) { break }
                }
            }
            depth -= 1
        case UInt8(ascii: "["):
            try enterContainer()
            skipWhitespace()
            if try peek() == UInt8(ascii: "]") {
                index += 1
            } else {
                repeat { try skipValue() } while try !endOfMember(closing: UInt8(ascii: "]"))
            }
            depth -= 1
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        default: _ = try scanNumber()
        }
    }

    // MARK: Structure

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < end {
            switch base[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return
            }
        }
    }

    @inline(__always)
    private func peek() throws(Failure) -> UInt8 {
        guard index < end else { throw .syntax(.endOfInput(insideString: false)) }
        return base[index]
    }

    /// Steps into the array or object at `index`.
    private mutating func enterContainer() throws(Failure) {
        guard depth < Self.maxDepth else { throw .syntax(.tooDeep(at: index)) }
        depth += 1
        index += 1
    }

    private mutating func expectColon() throws(Failure) {
        skipWhitespace()
        guard try peek() == UInt8(ascii: ":") else { throw .syntax(.unexpected(at: index)) }
        index += 1
        skipWhitespace()
    }

    /// After a member of an array or object: true at its closing bracket, false at a comma
    /// followed by another member (a trailing comma is not JSON).
    @inline(__always)
    private mutating func endOfMember(closing: UInt8) throws(Failure) -> Bool {
        skipWhitespace()
        let byte = try peek()
        index += 1
        if byte == closing { return true }
        guard byte == UInt8(ascii: ",") else { throw .syntax(.unexpected(at: index - 1)) }
        skipWhitespace()
        if try peek() == closing { throw .syntax(.unexpected(at: index)) }
        return false
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        for offset in 0..<count {
            guard index + offset < end else { throw .syntax(.endOfInput(insideString: false)) }
            guard base[index + offset] == literal.utf8Start[offset] else { throw .syntax(.unexpected(at: index + offset)) }
        }
        index += count
    }

    // MARK: Strings

    /// The key at `index` (an opening quote): one of the event's fields, or else the key's text.
    private mutating func readKey() throws(Failure) -> (Field?, String) {
        let start = index + 1
        var cursor = start
        while cursor < end {
            let byte = base[cursor]
            if byte == UInt8(ascii: "\"") {
                if let field = Field.named(base + start, count: cursor - start) {
                    index = cursor + 1
                    return (field, "")
                }
                break
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            cursor += 1
        }
        let key = try readString()
        let field = key.utf8.withContiguousStorageIfAvailable { Field.named($0.baseAddress!, count: $0.count) } ?? nil
        return (field, field == nil ? key : "")
    }

    /// Where the string opened at `index` ends (its closing quote), and whether it holds
    /// escapes or non-ASCII bytes.
    @inline(__always)
    private func scanString() throws(Failure) -> (close: Int, escaped: Bool, ascii: Bool) {
        var cursor = index + 1
        var high: UInt64 = 0
        var escaped = false
        while cursor < end {
            // Eight bytes at a time while none of them is a quote, a backslash or a control character.
            if cursor + 8 <= end {
                let word = UnsafeRawPointer(base + cursor).loadUnaligned(as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let quote = word ^ (ones &* UInt64(UInt8(ascii: "\"")))
                let backslash = word ^ (ones &* UInt64(UInt8(ascii: "\\")))
                let special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
                if special & (ones &* 0x80) == 0 {
                    high |= word
                    cursor += 8
                    continue
                }
            }
            let byte = base[cursor]
            if byte == UInt8(ascii: "\"") { return (cursor, escaped, high & (0x0101_0101_0101_0101 &* 0x80) == 0) }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                cursor += 2
                continue
            }
            if byte < 0x20 { throw .syntax(.controlCharacter(byte, at: cursor)) }
            high |= UInt64(byte)
            cursor += 1
        }
        throw .syntax(.endOfInput(insideString: true))
    }

    /// Reads the string opened at `index`, which must be valid UTF-8 with valid escapes.
    private mutating func readString() throws(Failure) -> String {
        let start = index + 1
        let (close, escaped, ascii) = try scanString()
        guard escaped else {
            let bytes = UnsafeBufferPointer(start: base + start, count: close - start)
            index = close + 1
            if ascii { return String(decoding: bytes, as: UTF8.self) }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .syntax(.invalidUTF8) }
            return text
        }
        try unescape(from: start, to: close)
        index = close + 1
        guard let text = scratch.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) else {
            throw .syntax(.invalidUTF8)
        }
        return text
    }

    /// Checks the string opened at `index` without making it.
    private mutating func skipString() throws(Failure) {
        let start = index + 1
        let (close, escaped, ascii) = try scanString()
        if escaped {
            try unescape(from: start, to: close)
            guard scratch.withUnsafeBufferPointer({ String(validating: $0, as: UTF8.self) }) != nil else {
                throw .syntax(.invalidUTF8)
            }
        } else if !ascii {
            guard String(validating: UnsafeBufferPointer(start: base + start, count: close - start), as: UTF8.self) != nil else {
                throw .syntax(.invalidUTF8)
            }
        }
        index = close + 1
    }

    /// Unescapes `start..<close` into `scratch`.
    private mutating func unescape(from start: Int, to close: Int) throws(Failure) {
        scratch.removeAll(keepingCapacity: true)
        var cursor = start
        while cursor < close {
            let byte = base[cursor]
            guard byte == UInt8(ascii: "\\") else {
                scratch.append(byte)
                cursor += 1
                continue
            }
            let escapeAt = cursor
            cursor += 1
            switch base[cursor] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(base[cursor])
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                let unit = try hexUnit(at: cursor + 1, close: close, escapeAt: escapeAt)
                cursor += 4
                var scalar = UInt32(unit)
                if unit >= 0xD800 && unit < 0xDC00 {
                    // A high surrogate must be followed by an escaped low one.
                    guard cursor + 2 < close, base[cursor + 1] == UInt8(ascii: "\\"), base[cursor + 2] == UInt8(ascii: "u"),
                        let low = try? hexUnit(at: cursor + 3, close: close, escapeAt: cursor + 1), low >= 0xDC00 && low < 0xE000
                    else { throw .syntax(.loneSurrogate(unit, at: escapeAt)) }
                    cursor += 6
                    scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                } else if unit >= 0xDC00 && unit < 0xE000 {
                    throw .syntax(.loneSurrogate(unit, at: escapeAt))
                }
                for byte in UTF8.encode(Unicode.Scalar(scalar)!)! { scratch.append(byte) }
            default:
                throw .syntax(.badEscape(at: escapeAt))
            }
            cursor += 1
        }
    }

    /// The four hex digits at `at`, which must end before `close`.
    private func hexUnit(at: Int, close: Int, escapeAt: Int) throws(Failure) -> UInt16 {
        guard at + 4 <= close else { throw .syntax(.badEscape(at: escapeAt)) }
        var unit: UInt16 = 0
        for offset in 0..<4 {
            let byte = base[at + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .syntax(.badEscape(at: escapeAt))
            }
            unit = unit << 4 | UInt16(digit)
        }
        return unit
    }

    // MARK: Numbers

    /// The extent of the number at `index`, checked against JSON's grammar
    /// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), with what a fast conversion needs.
    private struct ScannedNumber {
        var start: Int
        var end: Int
        /// The first 19 significant digits, as an integer, and how many there were in all.
        var mantissa: UInt64
        var digits: Int
        /// Digits after the decimal point (among the first 19), and the written exponent.
        var fractionDigits: Int
        var exponent: Int
        var negative: Bool
        /// Whether every digit is zero.
        var allZero: Bool
    }

    private mutating func scanNumber() throws(Failure) -> ScannedNumber {
        let start = index
        var cursor = index
        var number = ScannedNumber(start: start, end: start, mantissa: 0, digits: 0, fractionDigits: 0, exponent: 0, negative: false, allZero: true)
        @inline(__always) func isDigit(_ at: Int) -> Bool { at < end && base[at] &- UInt8(ascii: "0") < 10 }
        if cursor < end && base[cursor] == UInt8(ascii: "-") {
            number.negative = true
            cursor += 1
        }
        guard isDigit(cursor) else {
            if cursor >= end { throw .syntax(.endOfInput(insideString: false)) }
            throw .syntax(cursor == start ? .unexpected(at: cursor) : .badNumber(at: start))
        }
        func digit(_ at: Int, fraction: Bool) {
            let value = UInt64(base[at] &- UInt8(ascii: "0"))
            if value != 0 { number.allZero = false }
            if number.digits == 0 && value == 0 {
                if fraction { number.fractionDigits += 1 }  // leading zeros only scale
                return
            }
            if number.digits < 19 {
                number.mantissa = number.mantissa &* 10 &+ value
                if fraction { number.fractionDigits += 1 }
            } else if !fraction {
                number.exponent += 1  // integer digits beyond the 19th scale the value
            }
            number.digits += 1
        }
        if base[cursor] == UInt8(ascii: "0") {
            cursor += 1
            if isDigit(cursor) { throw .syntax(.badNumber(at: start)) }
        } else {
            while isDigit(cursor) {
                digit(cursor, fraction: false)
                cursor += 1
            }
        }
        if cursor < end && base[cursor] == UInt8(ascii: ".") {
            cursor += 1
            guard isDigit(cursor) else { throw .syntax(.badNumber(at: start)) }
            while isDigit(cursor) {
                digit(cursor, fraction: true)
                cursor += 1
            }
        }
        if cursor < end && (base[cursor] == UInt8(ascii: "e") || base[cursor] == UInt8(ascii: "E")) {
            cursor += 1
            var negativeExponent = false
            if cursor < end && (base[cursor] == UInt8(ascii: "+") || base[cursor] == UInt8(ascii: "-")) {
                negativeExponent = base[cursor] == UInt8(ascii: "-")
                cursor += 1
            }
            guard isDigit(cursor) else { throw .syntax(.badNumber(at: start)) }
            var exponent = 0
            while isDigit(cursor) {
                exponent = min(exponent * 10 + Int(base[cursor] &- UInt8(ascii: "0")), 100_000)
                cursor += 1
            }
            number.exponent += negativeExponent ? -exponent : exponent
        }
        number.end = cursor
        index = cursor
        return number
    }

    private static let exactPowersOfTen: [Double] = (0...22).map { power in
        var value = 1.0
        for _ in 0..<power { value *= 10 }
        return value
    }

    /// The number at `index` as a Double, or nil if it is beyond a Double's range (it
    /// would become infinite, or zero though its digits are not all zero).
    private mutating func readNumber() throws(Failure) -> Double? {
        let number = try scanNumber()
        if number.allZero { return number.negative ? -0.0 : 0.0 }
        let scale = number.exponent - number.fractionDigits
        // Exact when the digits fit a Double's mantissa and the power of ten is exact too.
        if number.digits <= 15 && scale >= -22 && scale <= 22 {
            var value = Double(number.mantissa)
            value = scale < 0 ? value / Self.exactPowersOfTen[-scale] : value * Self.exactPowersOfTen[scale]
            return number.negative ? -value : value
        }
        let text = String(decoding: UnsafeBufferPointer(start: base + number.start, count: number.end - number.start), as: UTF8.self)
        guard let value = Double(text), value.isFinite, value != 0 else { return nil }
        return value
    }
}
