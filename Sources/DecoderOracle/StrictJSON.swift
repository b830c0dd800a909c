import Foundation

/// An independent, deliberately plain check of what `ChangeEvent.decode` takes beyond
/// Foundation: RFC 8259 JSON in UTF-8 (an optional UTF-8 byte order mark first), every
/// escape valid and every escaped surrogate paired, no object repeating a key (keys
/// compared as Swift strings compare). Recursive descent over the bytes; slow, and never
/// on the hot path.
public enum StrictJSON {
    /// Why `bytes` are not such JSON, or nil if they are.
    public static func violation(in bytes: [UInt8]) -> String? {
        switch read(bytes) {
        case .success: nil
        case .failure(let violation): violation.text
        }
    }

    /// The string members of the top-level object of `bytes`, if they are such JSON.
    public static func topLevelStrings(in bytes: [UInt8]) -> [String: String]? {
        try? read(bytes).get()
    }

    private static func read(_ bytes: [UInt8]) -> Result<[String: String], Reader.Violation> {
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        guard String(validating: body, as: UTF8.self) != nil else { return .failure(Reader.Violation("not UTF-8")) }
        var reader = Reader(bytes: Array(body))
        return Result { () throws(Reader.Violation) in
            reader.whitespace()
            try reader.value()
            reader.whitespace()
            if reader.at < reader.bytes.count { throw Reader.Violation("data after the value at \(reader.at)") }
            return reader.topLevelStrings
        }
    }

    private struct Reader {
        struct Violation: Error {
            let text: String
            init(_ text: String) { self.text = text }
        }

        let bytes: [UInt8]
        var at = 0
        var depth = 0
        var topLevelStrings: [String: String] = [:]

        var current: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func whitespace() {
            while let byte = current, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { at += 1 }
        }

        mutating func expect(_ byte: Character) throws(Violation) {
            guard current == byte.asciiValue else { throw Violation("expected '\(byte)' at \(at)") }
            at += 1
        }

        mutating func value() throws(Violation) {
            switch current.map({ Character(Unicode.Scalar($0)) }) {
            case "{": try object()
            case "[": try array()
            case "\"": _ = try string()
            case "t": try literal("true")
            case "f": try literal("false")
            case "n": try literal("null")
            case .some(let c) where c == "-" || c.isASCII && c.isNumber: try number()
            default: throw Violation("no value at \(at)")
            }
        }

        mutating func literal(_ word: String) throws(Violation) {
            for character in word { try expect(character) }
        }

        mutating func object() throws(Violation) {
            try expect("{")
            depth += 1
            defer { depth -= 1 }
            whitespace()
            var keys = Set<String>()
            if current == UInt8(ascii: "}") {
                at += 1
                return
            }
            while true {
                whitespace()
                let key = try string()
                guard keys.insert(key).inserted else { throw Violation("duplicate key \(key)") }
                whitespace()
                try expect(":")
                whitespace()
                if depth == 1 && current == UInt8(ascii: "\"") {
                    topLevelStrings[key] = try string()
                } else {
                    try value()
                }
                whitespace()
                if current == UInt8(ascii: "}") {
                    at += 1
                    return
                }
                try expect(",")
            }
        }

        mutating func array() throws(Violation) {
            try expect("[")
            depth += 1
            defer { depth -= 1 }
            whitespace()
            if current == UInt8(ascii: "]") {
                at += 1
                return
            }
            while true {
                whitespace()
                try value()
                whitespace()
                if current == UInt8(ascii: "]") {
                    at += 1
                    return
                }
                try expect(",")
            }
        }

        mutating func string() throws(Violation) -> String {
            try expect("\"")
            var scalars = String.UnicodeScalarView()
            var pendingHigh: UInt32?
            var raw: [UInt8] = []
            func flushRaw() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll()
            }
            while true {
                guard let byte = current else { throw Violation("unterminated string") }
                at += 1
                if pendingHigh != nil && byte != UInt8(ascii: "\\") { throw Violation("lone high surrogate") }
                switch byte {
                case UInt8(ascii: "\""):
                    flushRaw()
                    return String(scalars)
                case 0..<0x20:
                    throw Violation("control character in a string")
                case UInt8(ascii: "\\"):
                    flushRaw()
                    guard let escape = current else { throw Violation("unterminated escape") }
                    at += 1
                    if pendingHigh != nil && escape != UInt8(ascii: "u") { throw Violation("lone high surrogate") }
                    switch Character(Unicode.Scalar(escape)) {
                    case "\"": scalars.append("\"")
                    case "\\": scalars.append("\\")
                    case "/": scalars.append("/")
                    case "b": scalars.append("\u{8}")
                    case "f": scalars.append("\u{C}")
                    case "n": scalars.append("\n")
                    case "r": scalars.append("\r")
                    case "t": scalars.append("\t")
                    case "u":
                        guard at + 4 <= bytes.count, let unit = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16),
                            bytes[at..<(at + 4)].allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit })
                        else { throw Violation("bad \\u escape") }
                        at += 4
                        if let high = pendingHigh {
                            guard (0xDC00...0xDFFF).contains(unit) else { throw Violation("lone high surrogate") }
                            scalars.append(Unicode.Scalar(0x10000 + (high - 0xD800) * 0x400 + (unit - 0xDC00))!)
                            pendingHigh = nil
                        } else if (0xD800...0xDBFF).contains(unit) {
                            pendingHigh = unit
                        } else if (0xDC00...0xDFFF).contains(unit) {
                            throw Violation("lone low surrogate")
                        } else {
                            scalars.append(Unicode.Scalar(unit)!)
                        }
                    default:
                        throw Violation("bad escape")
                    }
                default:
                    raw.append(byte)
                }
            }
        }

        mutating func number() throws(Violation) {
            let start = at
            if current == UInt8(ascii: "-") { at += 1 }
            func digits() -> Int {
                var count = 0
                while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                    at += 1
                    count += 1
                }
                return count
            }
            let integerStart = at
            let integerDigits = digits()
            guard integerDigits > 0 else { throw Violation("number without digits at \(start)") }
            if integerDigits > 1 && bytes[integerStart] == UInt8(ascii: "0") { throw Violation("leading zero at \(start)") }
            if current == UInt8(ascii: ".") {
                at += 1
                guard digits() > 0 else { throw Violation("no digits after the point at \(start)") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                at += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw Violation("no exponent digits at \(start)") }
            }
        }
    }
}
