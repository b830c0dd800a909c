/// Where and why bytes are not JSON, found by one scan over them. Foundation's parser
/// refuses such input with a bare "not valid JSON"; a dead letter should say more.
/// Only run on input the parser refused, so it is never on the hot path.
public struct JSONSyntaxProblem: Sendable, CustomStringConvertible {
    /// How deep Foundation's parser lets arrays and objects nest.
    static let maxDepth = 512

    /// Where and why, e.g. "unescaped control character 0x09 in a string at byte 12".
    public let description: String

    /// The first problem the scan recognizes in `bytes`, or nil if it recognizes none
    /// (for instance a misspelled literal, which only a full parser would name).
    public static func find(in bytes: [UInt8]) -> JSONSyntaxProblem? {
        if let offset = firstInvalidUTF8(in: bytes) {
            return JSONSyntaxProblem(description: "invalid UTF-8 at byte \(offset)")
        }
        var depth = 0
        var inString = false
        var escaped = false
        var started = false
        for (offset, byte) in bytes.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                } else if byte < 0x20 {
                    return JSONSyntaxProblem(description: "unescaped control character 0x\(hex(byte)) in a string at byte \(offset)")
                }
                continue
            }
            switch byte {
            case _ where isWhitespace(byte):
                continue
            case _ where started && depth == 0:
                return JSONSyntaxProblem(description: "unexpected data after the end of the value at byte \(offset)")
            case UInt8(ascii: "\""):
                inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth > maxDepth {
                    return JSONSyntaxProblem(description: "nested more than \(maxDepth) levels deep at byte \(offset)")
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth < 0 { return JSONSyntaxProblem(description: "unbalanced '\(Character(Unicode.Scalar(byte)))' at byte \(offset)") }
            default:
                break
            }
            // A top-level scalar ends at the next structural byte; only containers are tracked.
            if depth > 0 || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { started = true }
        }
        if bytes.allSatisfy(isWhitespace) {
            return JSONSyntaxProblem(description: "only whitespace")
        }
        if inString { return JSONSyntaxProblem(description: "ends inside a string (truncated?)") }
        if depth > 0 { return JSONSyntaxProblem(description: "ends with \(depth) unclosed bracket\(depth == 1 ? "" : "s") (truncated?)") }
        return nil
    }

    /// JSON's four whitespace bytes.
    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    /// Offset of the first byte of `bytes` that is not valid UTF-8, or nil if they all are.
    static func firstInvalidUTF8<Bytes: Sequence<UInt8>>(in bytes: Bytes) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }

    /// `byte` as two uppercase hex digits.
    static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return digits.count == 1 ? "0" + digits : digits
    }
}
