import DecoderOracle
import Foundation
import Orchestration
import Testing

@Suite("Change-event decoder against the Foundation-based reference", .timeLimit(.minutes(5)))
struct DecoderDifferentialTests {
    static let corpora = ["decoder", "differential"]

    @Test("Every input of both kept fuzz corpora is decoded as the reference decodes it, or differs only as the README says", arguments: corpora)
    func corpusAgrees(name: String) throws {
        let files = try Fixtures.fuzzCorpus(name)
        #expect(files.count >= 15, "the \(name) corpus is missing")
        for file in files {
            let outcome = DecoderDifferential.compare(Array(try Data(contentsOf: file)))
            #expect(outcome.disagreement == nil, "\(name)/\(file.lastPathComponent): \(outcome.disagreement ?? "")")
        }
    }
}

/// The deliberate differences from the Foundation-based decoder (README, "Wire format").
@Suite("Wire format: what the decoder takes on purpose", .timeLimit(.minutes(3)))
struct WireFormatDecisionTests {
    static func event(_ members: String, timestamp: String = "2025-10-10T12:00:00Z") -> [UInt8] {
        Array(#"{"id":"e1","change_type":"node_added","timestamp":"\#(timestamp)","subject":"s"\#(members)}"#.utf8)
    }

    @Test(
        "A key repeated in any object refuses the record, where Foundation kept the first or the last",
        arguments: [
            #","id":"e2""#, #","extra":1,"extra":2"#, #","properties":{"a":1,"a":2}"#, #","metadata":{"k":"v","k":"w"}"#,
            #","extra":{"deep":[{"x":1,"x":1}]}"#, #","properties":{"caf\u00e9":1,"cafe\u0301":2}"#,
        ])
    func duplicateKeys(members: String) {
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(Self.event(members)) }
        #expect(error?.field == nil && error?.reason.contains("duplicate key") == true, "\(String(describing: error))")
    }

    @Test("A UTF-8 byte order mark is skipped; UTF-16 and UTF-32 text is refused saying so")
    func encodings() throws {
        let plain = Self.event("")
        #expect(try ChangeEvent.decode([0xEF, 0xBB, 0xBF] + plain) == ChangeEvent.decode(plain))
        let text = String(decoding: plain, as: UTF8.self)
        let utf16LE: [UInt8] = text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let utf16BE: [UInt8] = [0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let utf32LE: [UInt8] = text.unicodeScalars.flatMap { [UInt8($0.value & 0xFF), 0, 0, 0] }
        for bytes in [utf16LE, utf16BE, utf32LE] {
            #expect(try ReferenceDecoder.decode(bytes).id == "e1", "Foundation takes it")
            let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(bytes) }
            #expect(error?.field == nil && error?.reason.contains("UTF-16 or UTF-32") == true, "\(String(describing: error))")
        }
    }

    @Test(
        "Escaped lone surrogates are refused wherever they are, naming the escape; pairs decode",
        arguments: [(#","extra":"\ud800""#, "\\uD800"), (#","properties":{"a":["\udc00x"]}"#, "\\uDC00"), (#","source":"\ud83dz""#, "\\uD83D")])
    func loneSurrogates(members: String, unit: String) {
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(Self.event(members)) }
        #expect(error?.field == nil && error?.reason.contains("lone surrogate \(unit)") == true, "\(String(describing: error))")
    }

    @Test("A surrogate pair and every other escape decode to their characters")
    func escapes() throws {
        let event = try ChangeEvent.decode(Self.event(#","source":"\ud83d\ude00 \"\\\/\b\f\n\r\t\u00e9\u0000""#))
        #expect(event.source == "😀 \"\\/\u{8}\u{C}\n\r\té\u{0}")
    }

    @Test(
        "What is not JSON is refused even in fields regen ignores, where Foundation let it through",
        arguments: [#","extra":01"#, #","extra":1."#, #","extra":-"#, #","extra":1e"#, #","extra":"\x""#, #","extra":[1,]"#, #","#])
    func notJSON(members: String) throws {
        let bytes = Self.event(members)
        if members != "," { #expect(try ReferenceDecoder.decode(bytes).id == "e1", "Foundation takes \(members)") }
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(bytes) }
        #expect(error?.field == nil && error?.reason.hasPrefix("not valid JSON: ") == true, "\(String(describing: error))")
    }

    @Test(
        "RFC 3339 timestamps decode to the instant they name, as Foundation computes it",
        arguments: [
            ("2025-10-10T12:00:00Z", 1_760_097_600), ("2025-10-10T12:00:00.5z", 1_760_097_600.5),
            ("2025-10-10T14:00:00.500+02:00", 1_760_097_600.5), ("2025-10-09T18:00:00-18:00", 1_760_097_600),
            ("2024-02-29T23:59:60Z", 1_709_251_200), ("2025-10-10T12:00:00.123456789Z", 1_760_097_600.123456789),
        ] as [(String, Double)])
    func timestamps(text: String, secondsSince1970: Double) throws {
        let event = try ChangeEvent.decode(Self.event("", timestamp: text))
        #expect(abs(event.timestamp.timeIntervalSince1970 - secondsSince1970) < 1e-6)
        #expect(event.timestamp == ReferenceDecoder.parseTimestamp(text), "the same Double as Foundation's")
    }

    @Test("Timestamps before the Gregorian reform are proleptic Gregorian (RFC 3339), where Foundation turned Julian")
    func prolepticGregorian() throws {
        let event = try ChangeEvent.decode(Self.event("", timestamp: "1500-03-01T00:00:00Z"))
        #expect(event.timestamp.timeIntervalSince1970 == -14_826_672_000)
        #expect(ReferenceDecoder.parseTimestamp("1500-03-01T00:00:00Z") != event.timestamp)
        #expect(RFC3339.format(event.timestamp) == "1500-03-01T00:00:00.000Z")
        #expect(try ChangeEvent.decode(Self.event("", timestamp: "0001-01-01T00:00:00Z")).timestamp.timeIntervalSince1970 == -62_135_596_800)
        let yearZero = try ChangeEvent.decode(Self.event("", timestamp: "0000-03-01T00:00:00Z")).timestamp
        #expect(yearZero.timeIntervalSince1970 == -62_162_035_200)
        #expect(RFC3339.format(yearZero) == "0000-03-01T00:00:00.000Z")
    }

    @Test(
        "Timestamps RFC 3339 does not allow are refused naming the field and the problem, though Foundation took some",
        arguments: [
            ("2025-10-10 12:00:00Z", "expected YYYY-MM-DDTHH:MM:SS"), ("2025-10-10T12:00:00", "expected Z or an offset"),
            ("2025-10-10T12:00:00+0200", "expected an offset"), ("2025-10-10T12:00:00GMT", "expected Z or an offset"),
            ("2025-02-29T12:00:00Z", "day 29 does not exist in month 2 of 2025"), ("2025-10-10T24:00:00Z", "hour 24"),
            ("2025-10-10T12:00:00.1234567890Z", "more than 9 digits"), ("2025-00-10T12:00:00Z", "month 0"),
            ("2025-10-10T12:00:00+18:01", "offset out of range"), ("20-10-10T12:00:00Z", "expected YYYY-MM-DD"),
            ("2025-10-10T12:00:00Z ", "unexpected text after"), ("2025-10-10T12:00:00.Z", "digits after the decimal point"),
        ])
    func badTimestamps(text: String, reason: String) {
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(Self.event("", timestamp: text)) }
        #expect(error?.field == "timestamp" && error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test("Numbers: beyond a Double's range refused at the reference decoder's path, subnormals and long integers taken")
    func numbers() throws {
        for (properties, field) in [(#"{"n":1e-400}"#, "properties.n"), (#"{"a":[[1e999]]}"#, "properties.a"), (#"{"5":{"x":-1e309}}"#, "properties[5].x")] {
            let bytes = Self.event(#","properties":"# + properties)
            let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(bytes) }
            #expect(error?.field == field && error?.reason.contains("beyond the range of a Double") == true, "\(String(describing: error))")
            #expect(error?.field == (#expect(throws: InvalidChangeEvent.self) { try ReferenceDecoder.decode(bytes) })?.field)
        }
        let event = try ChangeEvent.decode(Self.event(#","properties":{"tiny":4e-320,"long":12345678901234567890123,"neg":-0.0,"e":1E+2}"#))
        #expect(event.properties["tiny"]?.numberValue == Double("4e-320") && event.properties["long"]?.numberValue == 1.2345678901234568e22)
        #expect(event.properties["e"]?.numberValue == 100)
    }

    @Test("Nesting: 512 levels, the record's own object included, decode; one more is refused, as Foundation does")
    func nestingLimit() throws {
        func nested(_ arrays: Int) -> [UInt8] {
            Self.event(#","properties":{"a":"# + String(repeating: "[", count: arrays) + String(repeating: "]", count: arrays) + "}")
        }
        #expect(try ChangeEvent.decode(nested(510)) == ReferenceDecoder.decode(nested(510)))
        let error = #expect(throws: InvalidChangeEvent.self) { try ChangeEvent.decode(nested(511)) }
        #expect(error?.field == nil && error?.reason.contains("nested more than 512 levels deep") == true, "\(String(describing: error))")
        #expect(throws: InvalidChangeEvent.self) { try ReferenceDecoder.decode(nested(511)) }
    }
}
